"""Reusable test data: an event factory and hypothesis strategies for whole conversations.

``conversations()`` draws realistic conversations (a start, identity, internal context,
customer and bot turns, handoff requests, ticket status changes, closure) as lists of
validated :data:`handoff.streams.events.Event`. Internal-context values are drawn from
:data:`INTERNAL_VALUES`, which no customer-visible field of the strategy ever uses, so a
test can assert those strings never leak.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from handoff.core.decide import Decision, apply_event
from handoff.core.policy import Policy
from handoff.core.state import ConversationState
from handoff.streams.events import EVENT_ADAPTER, Event

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
INTERNAL_VALUES = ("enterprise", "churn_risk_high", "acct_health_red_42")
INTENTS = (
    "order_status",
    "shipping_delay",
    "product_question",
    "password_reset",
    "billing_invoice",
    "refund",
    "chargeback",
    "cancellation",
    "account_access",
    "security",
    "technical_issue",
    "change_address",
    "greeting",
    "thanks",
    "not_in_policy",
)
TEXTS = (
    "hi",
    "thanks",
    "where is my order?",
    "my package is late",
    "I want a refund for my order",
    "talk to a human please",
    "hablar con un agente",
    "quero falar com uma pessoa",
    "WHY IS THIS STILL BROKEN",
    "seriously?!?!",
    "the app crashes on login",
    "I need to change my shipping address",
    "obrigado",
    "I work in human resources",
    "ok",
)
STEPS = ("greet", "ask_order_id", "ask_invoice_id", "ask_app_version", "lookup_order", "faq")
LANGUAGES = ("en", "es", "pt-BR", "en-US", None)
CHANNELS = ("web", "mobile", "whatsapp", "email", None)


class EventFactory:
    """Builds valid events for one conversation with sequential ids and times."""

    def __init__(self, conversation_id: str = "conv-1", language: str | None = "en") -> None:
        self.conversation_id = conversation_id
        self.language = language
        self.n = 0

    def make(self, type_: str, **fields: Any) -> Event:
        self.n += 1
        raw: dict[str, Any] = {
            "schema_version": 1,
            "event_id": fields.pop("event_id", f"{self.conversation_id}-e{self.n}"),
            "conversation_id": self.conversation_id,
            "occurred_at": (T0 + timedelta(seconds=self.n)).isoformat(),
            "type": type_,
        }
        if self.language is not None:
            raw["language"] = self.language
        raw.update(fields)
        return EVENT_ADAPTER.validate_python(raw)

    def started(self, **context: Any) -> Event:
        return self.make("conversation_started", context=context, channel="web")

    def identity(self, verified: bool = False, **identity: Any) -> Event:
        return self.make("identity_captured", identity=identity, verified=verified)

    def msg(
        self,
        text: str = "hello there friend",
        intent: str | None = None,
        confidence: float | None = None,
        entities: dict[str, Any] | None = None,
        sentiment: float | None = None,
    ) -> Event:
        nlu: dict[str, Any] = {"entities": entities or {}}
        if intent is not None:
            nlu["intent"] = intent
        if confidence is not None:
            nlu["confidence"] = confidence
        if sentiment is not None:
            nlu["sentiment"] = sentiment
        return self.make("customer_message", text=text, nlu=nlu)

    def bot(self, outcome: str = "answered", step: str | None = "faq", **extra: Any) -> Event:
        return self.make("bot_message", text="...", step=step, outcome=outcome, **extra)

    def internal(self, **context: Any) -> Event:
        return self.make("internal_context", context=context)

    def handoff(self, text: str | None = None) -> Event:
        return self.make("handoff_requested", text=text)

    def agent(self, text: str = "hi", requested_fields: list[str] | None = None) -> Event:
        return self.make(
            "agent_message", text=text, agent_id="a1", requested_fields=requested_fields
        )

    def ticket(self, status: str, ticket_id: str = "T-1") -> Event:
        return self.make("ticket_status_changed", ticket_id=ticket_id, status=status)

    def csat(self, score: int = 5, comment: str | None = None) -> Event:
        return self.make("csat_submitted", score=score, comment=comment)

    def closed(self, reason: str = "resolved") -> Event:
        return self.make("conversation_closed", reason=reason)


def replay(
    events: Iterable[Event], policy: Policy, state: ConversationState | None = None
) -> tuple[ConversationState | None, list[Decision]]:
    """Apply events in order (``now`` = the event's own time); the final state and decisions."""
    decisions = []
    for event in events:
        decision = apply_event(state, event, event.occurred_at, policy)
        state = decision.state
        decisions.append(decision)
    return state, decisions


_unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def _event_fields(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    kind = draw(
        st.sampled_from(
            (
                "customer_message",
                "customer_message",
                "customer_message",
                "bot_message",
                "bot_message",
                "identity_captured",
                "internal_context",
                "handoff_requested",
                "agent_message",
                "ticket_status_changed",
                "csat_submitted",
                "conversation_closed",
            )
        )
    )
    if kind == "customer_message":
        nlu: dict[str, Any] = {}
        if draw(st.booleans()):
            nlu["intent"] = draw(st.sampled_from(INTENTS))
            nlu["confidence"] = draw(_unit)
        if draw(st.booleans()):
            nlu["sentiment"] = draw(st.floats(min_value=-1.0, max_value=1.0, allow_nan=False))
        nlu["entities"] = draw(
            st.dictionaries(
                st.sampled_from(("order_id", "invoice_id", "app_version", "device")),
                st.sampled_from(("A-100", "INV-7", "3.2.1", "iphone", "")),
                max_size=2,
            )
        )
        return kind, {"text": draw(st.sampled_from(TEXTS)), "nlu": nlu}
    if kind == "bot_message":
        return kind, {
            "text": "bot says",
            "step": draw(st.sampled_from(STEPS)),
            "outcome": draw(st.sampled_from(("answered", "asked", "failed"))),
        }
    if kind == "identity_captured":
        identity = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "email": st.sampled_from((" Ana@Example.COM ", "bo@example.org")),
                    "name": st.sampled_from(("Ana", "Bo")),
                    "customer_id": st.sampled_from(("C-1", "C-2")),
                },
            )
        )
        return kind, {"identity": identity, "verified": draw(st.booleans())}
    if kind == "internal_context":
        keys = ("plan_tier", "customer_tier", "account_health")
        context = draw(st.dictionaries(st.sampled_from(keys), st.sampled_from(INTERNAL_VALUES)))
        return kind, {"context": context}
    if kind == "handoff_requested":
        return kind, {}
    if kind == "agent_message":
        fields = draw(st.lists(st.sampled_from(("order_id", "email")), max_size=2))
        return kind, {"text": "hello", "agent_id": "ag-1", "requested_fields": fields}
    if kind == "ticket_status_changed":
        status = draw(st.sampled_from(("open", "pending", "solved", "closed", "reopened")))
        return kind, {"ticket_id": "T-9", "status": status}
    if kind == "csat_submitted":
        return kind, {"score": draw(st.integers(1, 5)), "comment": "fine"}
    return kind, {"reason": draw(st.sampled_from(("resolved", "abandoned", "timeout")))}


@st.composite
def conversations(
    draw: st.DrawFn, conversation_id: str | None = None, max_events: int = 25
) -> list[Event]:
    """A random but realistic conversation, starting with ``conversation_started``."""
    cid = conversation_id or draw(st.sampled_from(("c-a", "c-b", "conv/ü-1")))
    language = draw(st.sampled_from(LANGUAGES))
    channel = draw(st.sampled_from(CHANNELS))
    bodies = draw(st.lists(_event_fields(), min_size=1, max_size=max_events))
    start = (
        "conversation_started",
        {"context": {"page": "/help", "product_area": "orders", "app_version": "3.2.1"}},
    )
    out: list[Event] = []
    for i, (kind, fields) in enumerate([start, *bodies]):
        raw: dict[str, Any] = {
            "schema_version": 1,
            "event_id": f"{cid}#{i}",
            "conversation_id": cid,
            "occurred_at": (T0 + timedelta(seconds=i)).isoformat(),
            "type": kind,
            **fields,
        }
        if language is not None:
            raw["language"] = language
        if channel is not None:
            raw["channel"] = channel
        out.append(EVENT_ADAPTER.validate_python(raw))
    return out


@st.composite
def redeliveries(draw: st.DrawFn, events: Sequence[Event]) -> list[Event]:
    """``events`` with random earlier events delivered again (at-least-once delivery)."""
    out: list[Event] = []
    for i, event in enumerate(events):
        out.append(event)
        if i and draw(st.integers(0, 3)) == 0:
            out.append(events[draw(st.integers(0, i))])
    return out
