"""handoff simulate: ordering, labels, invalid lines, comparison, and equality with the
decisions the streaming path takes (the pure core applied per conversation in stream order)."""

from __future__ import annotations

import io
import json
import random
from collections import defaultdict
from contextlib import redirect_stdout
from pathlib import Path

import orjson
import pytest

from handoff import samples
from handoff.cli import main
from handoff.core.decide import apply_event
from handoff.core.policy import default_policy, parse_policy
from handoff.core.state import ConversationState
from handoff.simulate import compare, load_labels, read_events, simulate, summarize
from handoff.streams.codec import decode_event
from handoff.streams.commands import REASON_CODES

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "handoff" / "data" / "sample_conversations.jsonl"
LABELLED = ROOT / "handoff" / "data" / "labelled_conversations.jsonl"


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def _stream_order_decisions(lines: list[bytes]) -> dict[str, tuple[bool, tuple[str, ...], str]]:
    """What the worker decides: every event applied in stream (file) order per key."""
    policy = default_policy()
    states: dict[str, ConversationState | None] = defaultdict(lambda: None)
    fired: dict[str, set[str]] = defaultdict(set)
    escalated: dict[str, bool] = defaultdict(bool)
    for line in lines:
        event = decode_event(line, None)
        d = apply_event(states[event.conversation_id], event, event.occurred_at, policy)
        states[event.conversation_id] = d.state
        fired[event.conversation_id].update(d.reasons)
        escalated[event.conversation_id] |= d.escalated
    out = {}
    for cid, s in states.items():
        assert s is not None
        reasons = tuple(r for r in REASON_CODES if r in fired[cid])
        out[cid] = (escalated[cid], reasons, s.disposition or "open")
    return out


@pytest.mark.parametrize("path", [SAMPLE, LABELLED])
def test_simulate_gives_exactly_the_stream_decisions(path: Path) -> None:
    lines = _lines(path)
    want = _stream_order_decisions(lines)
    got = {
        o.conversation_id: (o.escalated, o.reasons, o.disposition)
        for o in simulate(read_events(lines), default_policy())
    }
    assert got == want
    # The ticket creates the streaming path emits are exactly simulate's escalations.
    assert {c for c, v in got.items() if v[0]} == {c for c, v in want.items() if v[0]}


def test_file_order_does_not_matter_only_occurred_at_then_file_order() -> None:
    lines = _lines(SAMPLE)
    shuffled = lines[:]
    random.Random(1).shuffle(shuffled)
    a = simulate(read_events(lines), default_policy())
    b = simulate(read_events(shuffled), default_policy())
    key = lambda o: (o.conversation_id, o.escalated, o.reasons, o.disposition)  # noqa: E731
    assert sorted(map(key, a)) == sorted(map(key, b))


def test_ties_on_occurred_at_keep_file_order() -> None:
    base = {"schema_version": 1, "conversation_id": "c1", "occurred_at": "2026-01-01T00:00:00Z"}
    ask = {**base, "event_id": "a", "type": "handoff_requested"}
    close = {**base, "event_id": "b", "type": "conversation_closed", "reason": "resolved"}
    first = simulate(read_events([orjson.dumps(ask), orjson.dumps(close)]), default_policy())
    second = simulate(read_events([orjson.dumps(close), orjson.dumps(ask)]), default_policy())
    assert first[0].disposition == "escalated_to_agent"
    assert second[0].escalated and second[0].disposition == "escalated_to_agent"
    assert [
        e.event_id
        for e in read_events([orjson.dumps(close), orjson.dumps(ask)]).conversations["c1"]
    ] == ["b", "a"]


def test_invalid_lines_are_counted_with_line_and_field_not_fatal() -> None:
    good = _lines(SAMPLE)[:5]
    bad = _lines(ROOT / "handoff" / "data" / "sample_bad_events.jsonl")[:2]
    rec = read_events([good[0], bad[0], b"", good[1], bad[1], *good[2:]])
    assert [b.line for b in rec.invalid] == [2, 5]
    assert "customer_message.nlu.confidence" in rec.invalid[0].error
    assert "schema_version" in rec.invalid[1].error
    assert rec.events == 5


def test_duplicate_event_ids_are_ignored_like_the_worker() -> None:
    lines = _lines(SAMPLE)
    once = simulate(read_events(lines), default_policy())
    twice = simulate(read_events(lines + lines[:50]), default_policy())
    assert sum(o.duplicates for o in twice) == 50
    assert [(o.escalated, o.reasons) for o in once] == [(o.escalated, o.reasons) for o in twice]


def test_labels_from_events_and_file_and_verdicts(tmp_path: Path) -> None:
    rec = read_events(_lines(SAMPLE))
    assert len(rec.labels) == 30
    outs = simulate(rec, default_policy())
    assert all(o.verdict == "agree" for o in outs if o.expected is not None)
    # A labels file overrides: mark two escalated conversations as "should not".
    escalated = [o.conversation_id for o in outs if o.escalated][:2]
    deflected = next(o.conversation_id for o in outs if o.deflected)
    f = tmp_path / "labels.csv"
    f.write_text(
        "conversation_id,expected_escalation\n"
        + "".join(f"{c},false\n" for c in escalated)
        + f"{deflected},yes\nbroken,maybe\n"
    )
    labels, bad = load_labels(f)
    assert [b.line for b in bad] == [5] and "expected_escalation" in bad[0].error
    total = summarize(simulate(rec, default_policy(), labels))[-1]
    assert (total.unneeded, total.missed) == (2, 1)
    assert total.labelled == 30 + 2  # the deflected one already had a label
    j = tmp_path / "labels.jsonl"
    j.write_text('{"conversation_id": "x", "expected_escalation": true}\nnot json\n')
    labels, bad = load_labels(j)
    assert labels == {"x": True} and bad[0].line == 2


def test_summary_rates_per_intent() -> None:
    rows = summarize(simulate(read_events(_lines(SAMPLE)), default_policy()))
    by = {r.intent: r for r in rows}
    assert by["order_status"].deflection_rate == 1.0
    assert by["refund"].escalation_rate == 1.0 and by["refund"].reasons["risk_intent"] == 6
    total = by["(all)"]
    assert total.conversations == 84 == sum(r.conversations for r in rows[:-1])


def test_against_lists_changes_per_conversation() -> None:
    rec = read_events(_lines(LABELLED))
    base = default_policy()
    text = (ROOT / "handoff" / "data" / "policy.toml").read_text()
    stricter = parse_policy(
        text.replace(
            'threshold = 0.5\nticket_type = "question"\npriority = "low"',
            'threshold = 0.6\nticket_type = "question"\npriority = "low"',
        )
    )
    assert stricter.threshold("product_question") == 0.6
    changes = compare(simulate(rec, base), simulate(rec, stricter))
    assert changes and all(c.intent == "product_question" for c in changes)
    assert all(c.kind == "now escalates" for c in changes)
    assert {c.effect for c in changes} <= {"fixes", "breaks"}
    assert compare(simulate(rec, base), simulate(rec, base)) == []


def test_labelled_sample_is_reproducible() -> None:
    out = io.BytesIO()

    class _Stdout:
        buffer = out

    import sys

    real = sys.stdout
    sys.stdout = _Stdout()  # type: ignore[assignment]
    try:
        samples.main(["--labelled", "300", "11"])
    finally:
        sys.stdout = real
    assert out.getvalue() == LABELLED.read_bytes()


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_cli_formats(fmt: str, tmp_path: Path) -> None:
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(["simulate", str(SAMPLE), "--format", fmt])
    assert rc == 0
    text = buf.getvalue()
    if fmt == "json":
        doc = json.loads(text)
        assert doc["total"]["conversations"] == 84 and doc["invalid_lines"] == []
    elif fmt == "csv":
        assert text.splitlines()[0].startswith("intent,conversations,escalated")
        assert text.splitlines()[-1].startswith("(all),84,")
    else:
        assert "unneeded" in text and "(all)" in text


def test_cli_bad_policy_is_an_error_naming_the_line(tmp_path: Path) -> None:
    p = tmp_path / "p.toml"
    p.write_text("[tiers.low]\nthreshold = 2\n")
    assert main(["simulate", str(SAMPLE), "--policy", str(p)]) == 2
