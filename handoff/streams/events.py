"""Input events of contract section 2, as frozen pydantic models.

Every event shares one envelope; ``type`` selects the model (a discriminated union), so a
validation error names the exact field (``customer_message.nlu.confidence``). Unknown extra
fields are kept (``extra="allow"``), never an error, as the contract demands.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

Id = Annotated[str, Field(min_length=1, max_length=128)]
Channel = Literal["web", "mobile", "whatsapp", "email", "sms", "voice", "other"]


class _Open(BaseModel):
    """A nested object that keeps unknown keys (context, identity, nlu)."""

    model_config = ConfigDict(frozen=True, extra="allow")


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    schema_version: Literal[1]
    event_id: Id
    conversation_id: Id
    occurred_at: AwareDatetime
    channel: Channel | None = None
    language: Annotated[str, Field(min_length=1, max_length=35)] | None = None


class Identity(_Open):
    email: str | None = None
    phone: str | None = None
    account_id: str | None = None
    customer_id: str | None = None
    domain: str | None = None
    user_id: str | None = None
    name: str | None = None


class Nlu(_Open):
    intent: str | None = None
    confidence: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    entities: dict[str, Any] = Field(default_factory=dict)
    sentiment: Annotated[float, Field(ge=-1.0, le=1.0)] | None = None


class ConversationStarted(Envelope):
    type: Literal["conversation_started"]
    context: dict[str, Any] = Field(default_factory=dict)


class IdentityCaptured(Envelope):
    type: Literal["identity_captured"]
    identity: Identity
    verified: bool = False


class CustomerMessage(Envelope):
    type: Literal["customer_message"]
    text: str
    nlu: Nlu = Field(default_factory=Nlu)


class BotMessage(Envelope):
    type: Literal["bot_message"]
    text: str = ""
    step: str | None = None
    outcome: Literal["answered", "asked", "failed"]


class InternalContext(Envelope):
    type: Literal["internal_context"]
    context: dict[str, Any]


class HandoffRequested(Envelope):
    type: Literal["handoff_requested"]
    text: str | None = None


class AgentMessage(Envelope):
    type: Literal["agent_message"]
    text: str
    agent_id: str
    requested_fields: list[str] | None = None


TicketStatus = Literal["new", "open", "pending", "solved", "closed", "reopened"]


class TicketStatusChanged(Envelope):
    type: Literal["ticket_status_changed"]
    ticket_id: str
    status: TicketStatus


class CsatSubmitted(Envelope):
    type: Literal["csat_submitted"]
    score: Annotated[int, Field(ge=1, le=5)]
    comment: str | None = None


class ConversationClosed(Envelope):
    type: Literal["conversation_closed"]
    reason: Literal["resolved", "abandoned", "timeout"]


Event = Annotated[
    ConversationStarted
    | IdentityCaptured
    | CustomerMessage
    | BotMessage
    | InternalContext
    | HandoffRequested
    | AgentMessage
    | TicketStatusChanged
    | CsatSubmitted
    | ConversationClosed,
    Field(discriminator="type"),
]

EVENT_TYPES: tuple[str, ...] = (
    "conversation_started",
    "identity_captured",
    "customer_message",
    "bot_message",
    "internal_context",
    "handoff_requested",
    "agent_message",
    "ticket_status_changed",
    "csat_submitted",
    "conversation_closed",
)

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def occurred(event: Envelope) -> datetime:
    """The event's source time (a helper so core code never reaches into the envelope)."""
    return event.occurred_at
