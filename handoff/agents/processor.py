"""The processor: input events and connector results in, commands and dead letters out.

Thin by design: decode -> load state -> ``core.decide`` -> emit -> persist. Order matters
for crash safety: commands are produced and acknowledged *before* the new state is
written, so a crash in between re-emits byte-identical commands (same ``command_id`` and
``idempotency_key``, which the connectors deduplicate) and never loses one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from handoff.agents.retry import until_sent
from handoff.core.decide import Decision, apply_event, apply_result
from handoff.core.policy import Policy
from handoff.core.state import ConversationState
from handoff.exceptions import InvalidEvent
from handoff.streams.codec import dead_letter_message, decode_event, encode
from handoff.streams.commands import ConnectorResult, CrmNoteCommand, TicketCommand
from handoff.streams.events import Event
from handoff.streams.topics import TopicNames
from handoff.tables.conversations import ConversationTable

log = logging.getLogger(__name__)

Send = Callable[[str, bytes, bytes], Awaitable[None]]
"""``send(topic, key, value)``: produce and wait for the broker's acknowledgement."""


@dataclass
class Counters:
    """Process-local counters for logs and the demo; the metrics tables are separate."""

    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    results: int = 0
    ticket_commands: int = 0
    crm_commands: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


@dataclass
class Step:
    """One decided input: ``decision is None`` means it became a dead letter."""

    decision: Decision | None
    item: Event | ConnectorResult | None
    previous: ConversationState | None
    key: bytes | None
    sends: list[tuple[str, bytes, bytes]]
    """``(topic, key, value)`` records to produce, in order, before the state is written."""


class Processor:
    def __init__(
        self,
        *,
        table: ConversationTable,
        policy: Policy,
        topics: TopicNames,
        send: Send,
        max_event_bytes: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.table = table
        self.policy = policy
        self.topics = topics
        self.send = send
        self.max_event_bytes = max_event_bytes
        self.clock = clock
        self.counters = Counters()
        # What the last handled input was and the state before it (for the metrics).
        self.last_input: Event | ConnectorResult | None = None
        self.last_previous: ConversationState | None = None

    async def handle(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> Decision | None:
        """Process one record; a record that cannot be processed becomes a dead letter."""
        step = self.decide(topic, partition, offset, key, value)
        if step.sends:  # the same records again until acknowledged (handoff.agents.retry)
            await until_sent(lambda: self.emit(step), what=f"{topic}[{partition}]@{offset}")
        self.persist(step)
        return step.decision

    def decide(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> Step:
        """Decide one record against the table: what to send, what state to write. No I/O."""
        self.last_input = self.last_previous = None
        try:
            if topic == self.topics.connector_results:
                decision = self._apply_result(key, value)
            else:
                decision = self._apply_event(key, value)
        except InvalidEvent as exc:
            dl = self._dead_letter(topic, partition, offset, key, value, str(exc))
            return Step(None, None, None, key, [dl])
        except Exception as exc:  # a poison event must not stop the partition
            log.exception("apply failed topic=%s partition=%d offset=%d", topic, partition, offset)
            msg = f"processing raised {type(exc).__name__}: {exc}"
            dl = self._dead_letter(topic, partition, offset, key, value, msg[:1000])
            return Step(None, None, None, key, [dl])
        item, previous = self.last_input, self.last_previous
        if decision.duplicate:
            self.counters.duplicates += 1
            return Step(decision, item, previous, key, [])
        assert key is not None  # decode checked key == conversation_id
        sends: list[tuple[str, bytes, bytes]] = []
        for cmd in decision.commands:
            if isinstance(cmd, TicketCommand):
                self.counters.ticket_commands += 1
                sends.append((self.topics.ticket_commands, key, encode(cmd)))
            else:
                self.counters.crm_commands += 1
                sends.append((self.topics.crm_commands, key, encode(cmd)))
        return Step(decision, item, previous, key, sends)

    async def emit(self, step: Step) -> None:
        """Send the step's records one by one, each acknowledged before the next."""
        for topic, key, value in step.sends:
            await self.send(topic, key, value)

    def persist(self, step: Step) -> None:
        """Write the step's new state (call only after its records are acknowledged)."""
        if step.decision is None or step.decision.duplicate:
            return
        assert step.key is not None
        self.table.put(step.key, step.decision.state)

    def _apply_event(self, key: bytes | None, value: bytes | None) -> Decision:
        event = decode_event(value, key, max_bytes=self.max_event_bytes)
        cid = event.conversation_id.encode()
        self.last_input, self.last_previous = event, self.table.get(cid)
        decision = apply_event(self.last_previous, event, self.clock(), self.policy)
        self.counters.applied += 1
        self.counters.by_type[event.type] = self.counters.by_type.get(event.type, 0) + 1
        return decision

    def _apply_result(self, key: bytes | None, value: bytes | None) -> Decision:
        if value is None:
            raise InvalidEvent("field 'value' is missing: the result has no value")
        try:
            result = ConnectorResult.model_validate_json(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "(root)"
            raise InvalidEvent(f"field 'connector_result.{loc}' {first['msg']}") from None
        if key is not None and key.decode("utf-8", "replace") != result.conversation_id:
            raise InvalidEvent("field 'conversation_id' does not equal the record key")
        cid = result.conversation_id.encode()
        self.counters.results += 1
        self.last_input, self.last_previous = result, self.table.get(cid)
        return apply_result(self.last_previous, result, self.clock(), self.policy)

    def _dead_letter(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        error: str,
    ) -> tuple[str, bytes, bytes]:
        self.counters.dead_letters += 1
        return dead_letter_message(
            self.topics.dead_letters,
            source_topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            value=value,
            error=error,
            now=self.clock(),
        )


__all__ = ["CrmNoteCommand", "Processor", "Step", "TicketCommand"]
