"""Topic names of contract section 1. One setting (``HANDOFF_TOPIC_PREFIX``) prefixes all."""

from __future__ import annotations

from dataclasses import dataclass

EVENTS = "conversation-events"
TICKET_COMMANDS = "ticket-commands"
CRM_COMMANDS = "crm-commands"
CONNECTOR_RESULTS = "connector-results"
DEAD_LETTERS = "dead-letters"


@dataclass(frozen=True)
class TopicNames:
    events: str = EVENTS
    ticket_commands: str = TICKET_COMMANDS
    crm_commands: str = CRM_COMMANDS
    connector_results: str = CONNECTOR_RESULTS
    dead_letters: str = DEAD_LETTERS

    @classmethod
    def with_prefix(cls, prefix: str) -> TopicNames:
        return cls(
            events=prefix + EVENTS,
            ticket_commands=prefix + TICKET_COMMANDS,
            crm_commands=prefix + CRM_COMMANDS,
            connector_results=prefix + CONNECTOR_RESULTS,
            dead_letters=prefix + DEAD_LETTERS,
        )
