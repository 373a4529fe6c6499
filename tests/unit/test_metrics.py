"""Metrics math: a hand-computed case, results, windows, percentiles and properties."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from handoff.core import metrics as m
from handoff.core.decide import apply_event, apply_result
from handoff.core.state import ConversationState
from handoff.streams.commands import ConnectorResult
from handoff.streams.events import Event
from handoff.worker import DEFAULT_POLICY, load_policy
from tests.strategies import T0, EventFactory, conversations, redeliveries

POLICY = load_policy(DEFAULT_POLICY)


def at(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def run(events: list[Event]) -> tuple[m.Counters, dict[str, ConversationState]]:
    """What the processor folds, per conversation in order (``now`` fixed)."""
    states: dict[str, ConversationState] = {}
    pending: dict[str, m.PendingSla | None] = {}
    total: m.Counters = {}
    for event in events:
        cid = event.conversation_id
        prev = states.get(cid)
        d = apply_event(prev, event, T0, POLICY)
        step = m.event_step(prev, event, d, pending.get(cid))
        if step.pending_changed:
            pending[cid] = step.pending
        states[cid] = d.state
        m.add_into(total, step.delta)
    return m.merge(total), states


def two_conversations() -> list[Event]:
    a = EventFactory("conv-a")
    b = EventFactory("conv-b")
    return [
        # A: web, refund (always escalates), agent re-asks the order id after 120 s.
        a.started(),
        a.make(
            "customer_message",
            text="I want a refund for A1",
            nlu={"intent": "refund", "confidence": 0.95, "entities": {"order_id": "A1"}},
            occurred_at=at(10),
        ),
        a.make(
            "agent_message",
            text="Order number?",
            agent_id="x1",
            requested_fields=["order_id"],
            occurred_at=at(130),
        ),
        a.make("agent_message", text="Thanks", agent_id="x1", occurred_at=at(200)),
        a.csat(4),
        a.closed("resolved"),
        # B: mobile, order status answered by the bot, closed resolved.
        b.make("conversation_started", channel="mobile", context={}),
        b.msg(
            "where is my order B2",
            intent="order_status",
            confidence=0.9,
            entities={"order_id": "B2"},
        ),
        b.bot("answered", step="order_lookup"),
        b.closed("resolved"),
    ]


def test_a_hand_computed_case() -> None:
    totals, _ = run(two_conversations())
    by = m.group(totals, "intent")
    assert m.group(totals)["all"] == {
        "conversations_started": 2,
        "conversations_classified": 2,
        "escalations": 1,
        "escalation_reasons": 1,
        "ticket_creates": 1,
        "crm_commands": 2,  # A at escalation, B at closure
        "agent_messages": 2,
        "agent_reask_messages": 1,
        "agent_reasked_fields": 1,
        "sla_responses": 1,
        "sla_seconds_sum": 120,
        "sla_within_target": 1,
        "sla_seconds_bucket": 1,
        "csat_sum": 4,
        "csat_count": 1,
        "conversations_closed": 2,
        "resolved_by_bot": 1,
    }
    assert totals[m.key("sla_seconds_bucket", "refund", "web", "le=120")] == 1
    assert totals[m.key("escalation_reasons", "refund", "web", "reason=risk_intent")] == 1
    assert totals[m.key("conversations_started", "unknown", "mobile")] == 1
    assert by["order_status"]["resolved_by_bot"] == 1
    s = m.summarize(totals)
    assert s["rates"] == {
        "resolution_rate": 0.5,
        "escalation_rate": 0.5,
        "duplicate_ticket_rate": 0.0,
        "crm_match_rate": None,
        "agent_reask_rate": 0.5,
        "csat_average": 4.0,
        "sla_within_target": 1.0,
    }
    assert s["by_intent"]["refund"]["rates"]["escalation_rate"] == 1.0
    assert s["by_intent"]["order_status"]["rates"]["resolution_rate"] == 1.0
    assert s["by_channel"]["web"]["rates"]["csat_average"] == 4.0
    assert s["by_reason"] == {"risk_intent": 1}
    assert s["sla"]["p50_seconds"] == 90.0  # linear inside the (60, 120] bucket


def test_the_sla_clock_restarts_on_reopen_and_late_replies_miss_the_target() -> None:
    f = EventFactory("c")
    events = [
        f.started(),
        f.handoff(),
        f.make("agent_message", text="hi", agent_id="a", occurred_at=at(2000)),
        f.make("ticket_status_changed", ticket_id="T", status="reopened", occurred_at=at(3000)),
        f.make("agent_message", text="back", agent_id="a", occurred_at=at(3060)),
        f.make("agent_message", text="again", agent_id="a", occurred_at=at(3100)),
    ]
    totals = m.group(run(events)[0])["all"]
    assert totals["sla_responses"] == 2
    assert totals["sla_within_target"] == 1  # 1998 s misses 900 s; 60 s makes it
    assert totals["reopened"] == 1
    assert totals["escalations"] == 1


def test_agent_reask_is_recognised_in_text_without_requested_fields() -> None:
    f = EventFactory("c")
    events = [
        f.started(),
        f.identity(email="a@example.com"),
        f.handoff(),
        f.make("agent_message", text="What is your e-mail address?", agent_id="a"),
        f.make("agent_message", text="And the invoice?", agent_id="a"),
    ]
    totals = m.group(run(events)[0])["all"]
    assert totals["agent_messages"] == 2
    assert totals["agent_reask_messages"] == 1


_ids = iter(range(10**6))


def _result(status: str, kind: str = "ticket", **kw: Any) -> ConnectorResult:
    return ConnectorResult(
        conversation_id="c", command_id=f"cmd-{next(_ids)}", kind=kind, status=status, **kw
    )


def test_results_count_tickets_duplicates_and_crm_matches() -> None:
    f = EventFactory("c")
    _, states = run([f.started(), f.handoff()])
    state = states["c"]
    total: m.Counters = {}
    for r in [
        _result("created", external_id="T1"),
        _result("created", external_id="T9"),  # a second ticket for one conversation
        _result("deduplicated", external_id="T1"),
        _result("created", "crm_note", external_id="N1", crm_contact_id="P1"),
        _result("updated", "crm_note", external_id="N1", crm_contact_id="P1"),
        _result("failed", "crm_note", error="boom"),
    ]:
        d = apply_result(state, r, T0, POLICY)
        m.add_into(total, m.result_step(state, r, d).delta)
        state = d.state
    t = m.group(total)["all"]
    assert t["tickets_created"] == 2
    assert t["tickets_deduplicated"] == 1
    assert t["duplicate_tickets"] == 2
    assert t["crm_matched"] == 1  # once per note, not per patch
    assert t["crm_notes_created"] == 1 and t["crm_notes_updated"] == 1
    assert "crm_unmatched" not in t
    assert total[m.key("connector_failures", "unknown", "web", "kind=crm_note")] == 1

    fresh = states["c"]
    r = _result("unmatched_contact", "crm_note", external_id="N2")
    delta = m.result_step(fresh, r, apply_result(fresh, r, T0, POLICY)).delta
    assert m.group(delta)["all"] == {"crm_unmatched": 1}


def test_percentile_is_linear_within_buckets() -> None:
    assert m.percentile({}, 0.5) is None
    assert m.percentile({60: 1, 120: 1}, 0.5) == 60.0
    assert m.percentile({60: 0, 120: 4}, 0.5) == 90.0
    assert m.percentile({60: 1, float("inf"): 9}, 0.99) == 60


def test_windows_expire_behind_the_watermark() -> None:
    assert m.window_start(3725.0, m.MINUTE) == 3720
    assert m.window_start(3725.0, m.HOUR) == 3600
    wm = 10 * m.HOUR
    assert m.expired(wm - m.MINUTE_RETENTION - m.MINUTE, m.MINUTE, wm)
    assert not m.expired(wm - m.MINUTE_RETENTION, m.MINUTE, wm)
    assert not m.expired(wm - 47 * m.HOUR, m.HOUR, wm)


def test_trend_ends_at_the_watermark_and_fills_gaps() -> None:
    minute = {0: {m.key("escalations"): 2.0}, 120: {m.key("escalations"): 1.0}}
    s = m.summarize({}, minute, {}, watermark=150.0)
    rows = s["trend"]["minutes"]
    assert len(rows) == 60 and rows[-1]["start"] == 120
    assert [r["escalations"] for r in rows[-3:]] == [2, 0, 1]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_redelivery_adds_only_duplicate_events(data: st.DataObject) -> None:
    events = data.draw(conversations())
    once, _ = run(events)
    again_events = data.draw(redeliveries(events))
    again, _ = run(again_events)
    extra = m.merge(again, {k: -v for k, v in once.items()})
    assert all(m.split(k)[0] == "duplicate_events" for k in extra)
    assert sum(extra.values()) == len(again_events) - len(events)


@settings(max_examples=40, deadline=None)
@given(st.lists(conversations(max_events=12), min_size=1, max_size=4), st.randoms())
def test_totals_do_not_depend_on_how_inputs_are_split_across_partitions(
    convs: list[list[Event]], rnd: Any
) -> None:
    # Distinct ids per conversation, then split conversations over 3 "partitions".
    renamed = [
        [e.model_copy(update={"conversation_id": f"k{i}"}) for e in conv]
        for i, conv in enumerate(convs)
    ]
    whole, _ = run([e for conv in renamed for e in conv])
    parts: list[list[Event]] = [[], [], []]
    for conv in renamed:
        parts[rnd.randrange(3)].extend(conv)
    assert m.merge(*(run(p)[0] for p in parts)) == whole
    s = m.summarize(whole)
    for rate in s["rates"].values():
        assert rate is None or rate >= 0
    assert s["rates"]["resolution_rate"] is None or s["rates"]["resolution_rate"] <= 1
