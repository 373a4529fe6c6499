"""Realistic sample conversations, generated deterministically from a seed.

Each scenario is a small script of contract events; variations (names, channels, languages,
order ids, wording) come from a seeded ``random.Random``, so the bundled file
``handoff/data/sample_conversations.jsonl`` is reproducible (a test regenerates it) and
``generate(n)`` can make any number of conversations for benchmarks and chaos runs.

The bot asks for a required entity with a ``bot_message`` of outcome ``asked`` and step
``ask_<entity>`` (for example ``ask_order_id``): that is how asks are attributed.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

Event = dict[str, Any]

FIRST = ["Ana", "Ben", "Chloe", "Diego", "Emma", "Farid", "Giulia", "Hiro", "Ines", "Jonas"]
LAST = ["Silva", "Okafor", "Martin", "Garcia", "Kowalski", "Nguyen", "Rossi", "Schmidt"]
CHANNELS = ["web", "mobile", "whatsapp", "email", "sms"]
AREAS = ["checkout", "orders", "billing", "account", "shipping", "app"]


class _Conv:
    """Builds one conversation's events with increasing timestamps."""

    def __init__(self, rng: random.Random, cid: str, start: datetime, lang: str) -> None:
        self.rng = rng
        self.cid = cid
        self.t = start
        self.lang = lang
        self.channel = rng.choice(CHANNELS)
        self.events: list[Event] = []
        self.n = 0

    def add(self, etype: str, **fields: Any) -> None:
        self.n += 1
        self.t += timedelta(seconds=self.rng.randint(4, 40))
        ev: Event = {
            "schema_version": 1,
            "event_id": f"{self.cid}-e{self.n:03d}",
            "conversation_id": self.cid,
            "occurred_at": self.t.isoformat().replace("+00:00", "Z"),
            "type": etype,
            "channel": self.channel,
            "language": self.lang,
        }
        ev.update(fields)
        self.events.append(ev)

    def start(self, area: str | None = None) -> None:
        self.add(
            "conversation_started",
            context={
                "page": f"/help/{area or self.rng.choice(AREAS)}",
                "product_area": area or self.rng.choice(AREAS),
                "app_version": f"5.{self.rng.randint(0, 9)}.{self.rng.randint(0, 20)}",
            },
        )

    def identity(self, verified: bool = True) -> dict[str, str]:
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        ident = {
            "email": f"  {first}.{last}{self.rng.randint(1, 99)}@Example.com ",
            "name": f"{first} {last}",
            "customer_id": f"cus_{self.rng.randint(10000, 99999)}",
        }
        self.add("identity_captured", identity=ident, verified=verified)
        return ident

    def says(
        self,
        text: str,
        intent: str | None,
        conf: float,
        sentiment: float = 0.0,
        **entities: Any,
    ) -> None:
        nlu = {"intent": intent, "confidence": conf, "entities": entities, "sentiment": sentiment}
        self.add("customer_message", text=text, nlu=nlu)

    def bot(self, text: str, step: str, outcome: str) -> None:
        self.add("bot_message", text=text, step=step, outcome=outcome)

    def internal(self) -> None:
        self.add(
            "internal_context",
            context={
                "plan_tier": self.rng.choice(["free", "pro", "enterprise"]),
                "customer_tier": self.rng.choice(["standard", "gold", "platinum"]),
                "account_health": self.rng.choice(["healthy", "churn_risk_high"]),
            },
        )

    def close(self, reason: str, **extra: Any) -> None:
        self.add("conversation_closed", reason=reason, **extra)


def _order(rng: random.Random) -> str:
    return f"A{rng.randint(100000, 999999)}"


def s_bot_resolves(c: _Conv) -> None:
    c.start("orders")
    c.identity()
    o = _order(c.rng)
    c.says(f"Where is my order {o}?", "order_status", 0.93, 0.1, order_id=o)
    c.bot("Your order shipped yesterday and arrives Friday.", "order_lookup", "answered")
    c.says("Great, thanks!", "thanks", 0.97, 0.8)
    c.close("resolved", expected_escalation=False)
    c.add("csat_submitted", score=c.rng.choice([4, 5]), comment="quick answer")


def s_low_confidence(c: _Conv) -> None:
    c.start("app")
    c.identity(verified=False)
    c.says("Can the widget sync with my old calendar export thing?", "product_question", 0.41)
    c.bot("Here is our article on calendar sync.", "kb_answer", "failed")
    c.close("resolved", expected_escalation=True)


def s_handoff_button(c: _Conv) -> None:
    c.start("billing")
    c.identity()
    inv = f"INV-{c.rng.randint(1000, 9999)}"
    c.says(f"Question about invoice {inv}", "billing_invoice", 0.88, 0.0, invoice_id=inv)
    c.bot("I can resend the invoice by email.", "invoice_resend", "answered")
    c.add("handoff_requested", text="Talk to a human")
    c.add("agent_message", text="Hi, I am looking at it now.", agent_id="agent_7")
    c.add("ticket_status_changed", ticket_id="pending", status="solved")
    c.add("csat_submitted", score=c.rng.choice([3, 4, 5]), comment="ok")


def s_human_in_words(c: _Conv) -> None:
    c.start("account")
    phrases = {
        "es": "Quiero hablar con un agente, por favor",
        "pt-BR": "Quero falar com um atendente humano",
        "en": "Can I speak to a real person please?",
    }
    c.identity()
    c.says("My password reset email never arrives", "password_reset", 0.86)
    c.bot("I have sent a new reset link.", "send_reset", "answered")
    c.says(phrases.get(c.lang, phrases["en"]), "password_reset", 0.7)


def s_risk_refund(c: _Conv) -> None:
    c.start("orders")
    c.identity()
    c.internal()
    o = _order(c.rng)
    c.says(f"I want a refund for order {o}, it arrived broken", "refund", 0.95, -0.2, order_id=o)
    c.add(
        "agent_message",
        text="Could you confirm your order number?",
        agent_id="agent_3",
        requested_fields=["order_id"],
    )
    c.add("ticket_status_changed", ticket_id="pending", status="solved")
    c.add("csat_submitted", score=c.rng.choice([2, 4, 5]), comment="refund done")


def s_negative_streak(c: _Conv) -> None:
    c.start("shipping")
    c.identity()
    o = _order(c.rng)
    c.says(f"My package {o} is a week late", "shipping_delay", 0.9, -0.6, order_id=o)
    c.bot("Carriers are delayed; it should arrive in 2 days.", "delay_notice", "answered")
    c.says("That is what you said last week. Useless.", "shipping_delay", 0.85, -0.8)


def s_angry(c: _Conv) -> None:
    c.start("billing")
    c.identity()
    c.says("YOU CHARGED ME TWICE AND NOBODY ANSWERS!!!", "billing_invoice", 0.9, -0.3)


def s_missing_entity(c: _Conv) -> None:
    c.start("orders")
    c.identity(verified=False)
    c.says("I need to change my delivery address", "change_address", 0.92)
    c.bot("Sure, what is your order number?", "ask_order_id", "asked")
    c.says("I don't have it with me", "change_address", 0.8)
    c.bot("I need the order number to change the address.", "ask_order_id", "asked")
    c.says("I really can't find it", "change_address", 0.8)


def s_no_progress(c: _Conv) -> None:
    c.start("app")
    c.identity()
    v = f"5.{c.rng.randint(0, 9)}.1"
    c.says("The app crashes when I open settings", "technical_issue", 0.82, app_version=v)
    c.bot("Try restarting the app.", "troubleshoot_restart", "failed")
    c.says("Still crashing", "technical_issue", 0.8)
    c.bot("Try reinstalling.", "troubleshoot_reinstall", "failed")
    c.says("Reinstalled, still the same", "technical_issue", 0.8)


def s_abandoned(c: _Conv) -> None:
    c.start()
    c.says("hello?", "greeting", 0.9)
    c.bot("Hi! How can I help?", "greet", "answered")
    c.close(c.rng.choice(["abandoned", "timeout"]), expected_escalation=False)


def s_reopened(c: _Conv) -> None:
    c.start("account")
    c.identity()
    c.says("Someone logged into my account from another country", "security", 0.91, -0.4)
    c.add("agent_message", text="We locked the account; please reset.", agent_id="agent_1")
    c.add("ticket_status_changed", ticket_id="pending", status="solved")
    c.add("ticket_status_changed", ticket_id="pending", status="reopened")


def s_late_identity(c: _Conv) -> None:
    c.start("billing")
    c.says("Cancel my subscription now", "cancellation", 0.94, -0.1)
    c.identity()
    c.says("The invoice number is on my email", "cancellation", 0.8, invoice_id="INV-4711")


SCENARIOS: list[Callable[[_Conv], None]] = [
    s_bot_resolves,
    s_low_confidence,
    s_handoff_button,
    s_human_in_words,
    s_risk_refund,
    s_negative_streak,
    s_angry,
    s_missing_entity,
    s_no_progress,
    s_abandoned,
    s_reopened,
    s_late_identity,
    s_bot_resolves,  # the bot resolves most chats in real deployments
    s_bot_resolves,
]
LANGS = ["en", "en", "en", "es", "pt-BR", "fr"]


def generate_conversations(
    n: int, seed: int = 7, start: datetime | None = None
) -> Iterator[list[Event]]:
    """``n`` conversations, each a list of events in source order."""
    rng = random.Random(seed)
    t0 = start or datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    for i in range(n):
        lang = rng.choice(LANGS)
        c = _Conv(rng, f"conv-{seed}-{i:06d}", t0 + timedelta(seconds=17 * i), lang)
        SCENARIOS[i % len(SCENARIOS)](c)
        yield c.events


def interleave(convs: list[list[Event]], rng: random.Random) -> list[Event]:
    """Merge conversations into one stream, keeping each conversation's own order."""
    queues = [list(reversed(c)) for c in convs]
    out: list[Event] = []
    live = [q for q in queues if q]
    while live:
        q = rng.choice(live[:8])  # a window of concurrent chats, like a real queue
        out.append(q.pop())
        live = [q for q in live if q]
    return out


# --- labelled conversations for backtests (handoff/data/labelled_conversations.jsonl) -------
#
# Borderline chats where only the NLU's confidence can tell the bot's answer was right: the
# bot believes it answered (no failed step, no anger), so ``low_confidence`` is the one
# reason that can fire. Confidence is drawn higher when the bot truly understood, lower
# when it did not, with overlap: moving a threshold trades deflection against missed
# escalations, as on real traffic.

_UNDERSTOOD = {
    "product_question": [
        "Does the Pro plan include priority support?",
        "Can I use the app offline?",
        "Is there a dark mode?",
    ],
    "order_status": ["Where is my order {o}?", "Has order {o} shipped yet?"],
    "password_reset": ["I forgot my password", "How do I reset my password?"],
}
_MISUNDERSTOOD = {
    "product_question": [
        "Can a guest without an account edit a shared board?",
        "Does the calendar sync keep recurring events from my old export?",
        "Will my team's custom fields survive the migration to the new workspace?",
    ],
    "order_status": [
        "The tracking for {o} says delivered but the box was for my neighbour",
        "Order {o} shows two shipments, which one is mine?",
    ],
    "password_reset": [
        "My reset link opens the login of my old company account",
        "I reset it but the mobile app still wants the old one",
    ],
}


def _labelled_chat(c: _Conv, understood: bool) -> None:
    intent = c.rng.choice(sorted(_UNDERSTOOD))
    c.start()
    c.identity(verified=c.rng.random() < 0.7)
    o = _order(c.rng)
    pool = _UNDERSTOOD if understood else _MISUNDERSTOOD
    text = c.rng.choice(pool[intent]).format(o=o)
    mode = 0.8 if understood else 0.5
    conf = round(c.rng.triangular(0.35, 0.97 if understood else 0.8, mode), 2)
    entities = {"order_id": o} if intent == "order_status" else {}
    c.says(text, intent, conf, round(c.rng.uniform(-0.3, 0.3), 2), **entities)
    c.bot("Here is what I found.", f"{intent}_answer", "answered")
    if understood:
        c.says("Perfect, thanks", "thanks", 0.95, 0.7)
        c.close("resolved", expected_escalation=False)
        c.add("csat_submitted", score=c.rng.choice([4, 5, 5]), comment="easy")
    else:
        c.add("customer_message", text="ok", nlu={"sentiment": -0.1})
        c.close(c.rng.choice(["abandoned", "resolved"]), expected_escalation=True)
        if c.rng.random() < 0.5:
            c.add("csat_submitted", score=c.rng.choice([1, 2, 2, 3]), comment="did not help")


def s_borderline_understood(c: _Conv) -> None:
    _labelled_chat(c, understood=True)


def s_borderline_misunderstood(c: _Conv) -> None:
    _labelled_chat(c, understood=False)


LABELLED_SCENARIOS: list[Callable[[_Conv], None]] = [
    s_borderline_understood,
    s_borderline_misunderstood,
    s_borderline_understood,
    s_bot_resolves,
    s_low_confidence,
    s_risk_refund,
    s_borderline_understood,
    s_handoff_button,
    s_borderline_misunderstood,
    s_reopened,
    s_abandoned,
    s_missing_entity,
]


def generate_labelled(n: int, seed: int = 11) -> Iterator[list[Event]]:
    """``n`` conversations, one every 50 minutes from 2026-11-20 (about a week per 200)."""
    rng = random.Random(seed)
    t0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    for i in range(n):
        c = _Conv(rng, f"lab-{seed}-{i:05d}", t0 + timedelta(minutes=50 * i), rng.choice(LANGS))
        LABELLED_SCENARIOS[i % len(LABELLED_SCENARIOS)](c)
        yield c.events


def main(argv: list[str] | None = None) -> None:
    """``python -m handoff.samples N [SEED]``: JSON lines of N interleaved conversations.

    ``python -m handoff.samples --labelled N [SEED]``: the labelled backtest set instead.
    """
    args = argv if argv is not None else sys.argv[1:]
    if args and args[0] == "--labelled":
        n = int(args[1]) if len(args) > 1 else 300
        seed = int(args[2]) if len(args) > 2 else 11
        convs = list(generate_labelled(n, seed))
        for ev in interleave(convs, random.Random(seed)):
            sys.stdout.buffer.write(orjson.dumps(ev) + b"\n")
        return
    n = int(args[0]) if args else 84
    seed = int(args[1]) if len(args) > 1 else 7
    convs = list(generate_conversations(n, seed))
    for ev in interleave(convs, random.Random(seed)):
        sys.stdout.buffer.write(orjson.dumps(ev) + b"\n")


if __name__ == "__main__":
    main()
