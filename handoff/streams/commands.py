"""Output records of contract sections 4-7: commands, connector results, dead letters.

Frozen models; ``model_dump(mode="json")`` is the wire form. Extra fields are forbidden on
what we emit, so a typo in producer code fails loudly in tests instead of on a consumer.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Disposition = Literal[
    "resolved_by_bot",
    "escalated_to_agent",
    "resolved",
    "reopened",
    "abandoned",
    "timed_out",
    "duplicate_merged",
]
ReasonCode = Literal[
    "low_confidence",
    "human_requested",
    "risk_intent",
    "negative_sentiment",
    "missing_required_entity",
    "no_progress",
]
REASON_CODES: tuple[ReasonCode, ...] = (
    "low_confidence",
    "human_requested",
    "risk_intent",
    "negative_sentiment",
    "missing_required_entity",
    "no_progress",
)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Requester(_Record):
    email: str | None = None
    name: str | None = None
    external_id: str | None = None
    verified: bool = False


class TicketCommand(_Record):
    schema_version: Literal[1] = 1
    command_id: str
    idempotency_key: str
    conversation_id: str
    ticket_id: str | None = None
    requester: Requester
    subject: str
    intent: str | None = None
    priority: Literal["urgent", "high", "normal", "low"] = "normal"
    ticket_type: Literal["problem", "incident", "question", "task"] = "question"
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    tags_add: list[str] = Field(default_factory=list)
    private_note: str
    transcript_ref: str
    escalation_reasons: list[ReasonCode] = Field(default_factory=list)
    disposition: Disposition
    # Our additions (the contract allows added fields):
    attempt: int = 1
    action: Literal["create", "update"] = "create"
    public_description: str = ""
    # Cross-conversation dedupe (contract section 3): "email|intent|order_id=..." or null
    # when the requester email or both order_id and invoice_id are unknown.
    dedupe_key: str | None = None


class Contact(_Record):
    email: str | None = None
    crm_contact_id: str | None = None


class CrmNoteCommand(_Record):
    schema_version: Literal[1] = 1
    command_id: str
    idempotency_key: str
    conversation_id: str
    contact: Contact
    note_id: str | None = None
    body: str
    tags: list[str] = Field(default_factory=list)
    disposition: Disposition
    ticket_url: str | None = None


class ConnectorResult(_Record):
    schema_version: Literal[1] = 1
    conversation_id: str
    command_id: str
    kind: Literal["ticket", "crm_note"]
    status: Literal["created", "updated", "deduplicated", "unmatched_contact", "failed"]
    external_id: str | None = None
    url: str | None = None
    attempts: int = 1
    error: str | None = None
    # Added: the idempotency key of the command, so state can match the result to its attempt.
    idempotency_key: str | None = None
    crm_contact_id: str | None = None


class DeadLetter(_Record):
    schema_version: Literal[1] = 1
    source_topic: str
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    value: str = Field(description="the original bytes, base64")
    error: str
    failed_at: str
