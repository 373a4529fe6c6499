"""ConversationState: everything a decision needs about one conversation, bounded.

The state is a frozen pydantic model; :func:`handoff.core.decide.apply_event` returns a new
one built from the handlers' already-valid fields (no re-validation on the hot path).
Every collection is bounded so a long or hostile conversation cannot grow a table row
without limit.

Applied event ids: the most recent :data:`MAX_APPLIED_IDS` ids are kept in insertion order.
A redelivery of an event applied more than that many events ago *in the same
conversation* would be applied again. That is acceptable: Kafka redelivers the
uncommitted tail of a partition after a crash or rebalance, i.e. recent events, and a
conversation that has seen 512 newer events since has long been committed past it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from handoff.streams.commands import Disposition, ReasonCode

MAX_APPLIED_IDS = 512
MAX_FAILED_STEPS = 10
MAX_STEPS_TRIED = 20
MAX_INTENTS_SEEN = 10
MAX_LAST_MESSAGES = 3
MAX_MESSAGE_CHARS = 1000
MAX_ENTITIES = 64
MAX_FAILURES = 10

CrmNoteState = Literal["none", "pending", "created", "unmatched", "failed"]


class ConversationState(BaseModel):
    """One conversation's correlation state. Treat every field as read-only.

    Identity is kept in two places on purpose: ``identity`` holds fields from an
    ``identity_captured`` event with ``verified=true`` (authenticated), ``claimed_identity``
    what the customer merely said. ``internal_context`` is agent-only and must never reach
    a customer-visible field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    conversation_id: str
    channel: str | None = None
    language: str | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    context: dict[str, Any] = {}
    identity: dict[str, str] = {}
    claimed_identity: dict[str, str] = {}
    internal_context: dict[str, Any] = {}

    intent: str | None = None
    confidence: float | None = None
    intents_seen: tuple[str, ...] = ()
    entities: dict[str, Any] = {}

    customer_turns: int = 0
    turns_without_progress: int = 0
    entity_asks: dict[str, int] = {}
    steps_tried: tuple[str, ...] = ()
    failed_steps: tuple[str, ...] = ()
    bot_answered: int = 0
    bot_asked: int = 0
    bot_failed: int = 0
    first_message: str | None = None
    issue_message: str | None = None
    last_messages: tuple[str, ...] = ()

    sentiment_last: float | None = None
    sentiment_min: float | None = None
    negative_streak: int = 0
    angry: bool = False
    human_requested: bool = False
    agent_reasks: int = 0

    disposition: Disposition | None = None
    closed_reason: str | None = None
    escalated: bool = False
    escalated_at: datetime | None = None
    attempt: int = 0
    reasons: tuple[ReasonCode, ...] = ()
    ticket_id: str | None = None
    reported_ticket_id: str | None = None  # from ticket_status_changed; never addressed
    ticket_url: str | None = None
    ticket_status: str | None = None
    merged_into: str | None = None  # another conversation's ticket we were merged into
    crm_note_id: str | None = None
    crm_contact_id: str | None = None
    crm_note: CrmNoteState = "none"
    csat: int | None = None
    csat_comment: str | None = None
    failures: tuple[str, ...] = ()

    applied_ids: tuple[str, ...] = ()

    def dump(self) -> dict[str, Any]:
        """A JSON-ready dict; ``ConversationState.load(state.dump()) == state``."""
        return self.model_dump(mode="json")

    @classmethod
    def load(cls, data: dict[str, Any]) -> ConversationState:
        """The inverse of :meth:`dump` (validates, so a corrupt row fails loudly)."""
        return cls.model_validate(data)

    def requester(self) -> tuple[str | None, str | None, str | None, bool]:
        """(email, name, external_id, verified) for the helpdesk and CRM.

        Verified identity wins as a whole when it carries an email or an external id;
        otherwise the claimed identity is used and ``verified`` is False. The email is
        trimmed and lower-cased; the external id is customer_id, else account_id, else
        user_id.
        """
        v = self.identity
        use_verified = bool(
            v.get("email") or v.get("customer_id") or v.get("account_id") or v.get("user_id")
        )
        src = v if use_verified else self.claimed_identity
        email = src.get("email")
        email = email.strip().lower() or None if email else None
        name = src.get("name") or self.claimed_identity.get("name") or v.get("name")
        external = src.get("customer_id") or src.get("account_id") or src.get("user_id")
        return email, name, external, use_verified


def new_state(conversation_id: str) -> ConversationState:
    """An empty state for a conversation seen for the first time."""
    return ConversationState(conversation_id=conversation_id)


def push(items: tuple[str, ...], item: str, limit: int) -> tuple[str, ...]:
    """Append, keeping the most recent ``limit`` items."""
    out = (*items, item)
    return out[-limit:] if len(out) > limit else out


def push_unique(items: tuple[str, ...], item: str, limit: int) -> tuple[str, ...]:
    """Append unless present, keeping the most recent ``limit`` distinct items."""
    if item in items:
        return items
    return push(items, item, limit)


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """At most ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
