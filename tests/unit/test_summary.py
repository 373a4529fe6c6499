"""Agent summary and CRM body: content, internal-context placement, safe truncation."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from handoff.core.policy import default_policy
from handoff.core.state import ConversationState
from handoff.core.summary import TRUNCATED, agent_summary, crm_body, truncate, utf16_len
from tests.strategies import EventFactory, replay

POLICY = default_policy()


def _conversation() -> ConversationState:
    f = EventFactory("conv-s", "es")
    events = [
        f.started(page="/orders", product_area="orders"),
        f.internal(plan_tier="enterprise", account_health="churn_risk_high"),
        f.identity(True, email="Ana@X.com", name="Ana"),
        f.msg("hola", "greeting", 0.99),
        f.msg("mi pedido no llega desde hace dos semanas", "shipping_delay", 0.8),
        f.bot("asked", "ask_order_id"),
        f.msg("es A-77", "shipping_delay", 0.8, {"order_id": "A-77"}, -0.6),
        f.bot("failed", "lookup_order"),
        f.msg("no entiendo", "shipping_delay", 0.7, sentiment=-0.7),
        f.msg("gracias", "thanks", 0.99),
    ]
    state, _ = replay(events, POLICY)
    assert state is not None
    return state


def test_agent_summary_bullets_and_sections() -> None:
    state = _conversation()
    text = agent_summary(state, state.reasons)
    head, _, tail = text.partition("\n\nLast customer messages:\n")
    bullets = head.splitlines()
    assert 5 <= len(bullets) <= 8 and all(b.startswith("- ") for b in bullets)
    # the real issue, not the closing "gracias" nor the greeting
    assert 'Customer asked: "mi pedido no llega desde hace dos semanas"' in text
    assert "Intent: shipping_delay" in text
    assert "order_id=A-77" in text
    assert "lookup_order" in text
    assert "negative_sentiment" in text
    assert "plan_tier=enterprise" in bullets[-1] and "Agent-only" in bullets[-1]
    last, _, failed = tail.partition("\n\nFailed bot steps:\n")
    assert last.splitlines() == ["> es A-77", "> no entiendo", "> gracias"]
    assert failed.splitlines() == ["- lookup_order"]


def test_agent_summary_without_internal_context_has_seven_bullets() -> None:
    f = EventFactory()
    state, _ = replay([f.msg("thanks", "thanks", 0.99)], POLICY)
    assert state is not None
    head = agent_summary(state, []).split("\n\n")[0]
    assert len(head.splitlines()) == 7
    assert 'Customer asked: "thanks"' in head  # nothing better to quote


def test_crm_body_contents_exclude_internal_context() -> None:
    state = _conversation().model_copy(update={"ticket_url": "https://hd/T-1"})
    body = crm_body(state)
    assert body.splitlines()[0] == "Ticket: https://hd/T-1"
    for needle in ("ana@x.com", "shipping_delay", "mi pedido no llega", "A-77", "lookup_order"):
        assert needle in body
    assert "lang_es" in body
    assert "enterprise" not in body and "churn_risk_high" not in body


def test_crm_body_truncation_keeps_ticket_link() -> None:
    huge = {"order_id": "A-1", "notes": "😀👍🏽é" * 50_000}
    state = _conversation().model_copy(
        update={"ticket_url": "https://hd/T-1", "entities": huge, "failed_steps": ("x" * 80,) * 10}
    )
    for limit in (1024, 5000, 65_536):
        body = crm_body(state.model_copy(update={"issue_message": "ü" * 300}), limit)
        assert utf16_len(body) <= limit and len(body) <= limit
        assert body.startswith("Ticket: https://hd/T-1\n")
    long_state = state.model_copy(
        update={"entities": {f"k{i}": "👩‍👩‍👧‍👦" * 40 for i in range(2000)}}
    )
    body = crm_body(long_state)
    assert body.endswith(TRUNCATED)
    assert utf16_len(body) <= 65_536
    assert body.startswith("Ticket: https://hd/T-1\n")


def test_truncate_never_splits_a_grapheme() -> None:
    family = "👩‍👩‍👧‍👦"
    for n in range(1, 40):
        out = truncate(family * 10, n + len(TRUNCATED), TRUNCATED)
        head = out.removesuffix(TRUNCATED)
        assert len(head) % len(family) == 0, (n, head)
    assert truncate("e\u0301" * 10, 5 + len(TRUNCATED)).removesuffix(TRUNCATED) == "e\u0301" * 2
    assert truncate("short", 100) == "short"


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=0, max_size=400), st.integers(min_value=12, max_value=300))
def test_truncate_fits_any_text(text: str, limit: int) -> None:
    out = truncate(text, limit)
    assert utf16_len(out) <= limit
    if utf16_len(text) <= limit:
        assert out == text
    else:
        assert text.startswith(out.removesuffix(TRUNCATED))
