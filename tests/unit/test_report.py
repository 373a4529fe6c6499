"""handoff report: numbers checked against a small case computed by hand."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest

from handoff.cli import main
from handoff.core.policy import default_policy
from handoff.exceptions import HandoffError
from handoff.report import build_report, parse_since, to_html, to_markdown
from handoff.simulate import read_events

N = 0


def ev(cid: str, minute: int, etype: str, day: int = 10, **fields: Any) -> bytes:
    global N
    N += 1
    at = datetime(2026, 1, day, 10, tzinfo=UTC) + timedelta(minutes=minute)
    body = {
        "schema_version": 1,
        "event_id": f"{cid}-{N}",
        "conversation_id": cid,
        "occurred_at": at.isoformat(),
        "type": etype,
        **fields,
    }
    return orjson.dumps(body)


def say(cid: str, minute: int, text: str, intent: str, conf: float, **entities: str) -> bytes:
    nlu = {"intent": intent, "confidence": conf, "entities": entities, "sentiment": 0.0}
    return ev(cid, minute, "customer_message", text=text, nlu=nlu)


def who(cid: str, minute: int, email: str) -> bytes:
    return ev(cid, minute, "identity_captured", identity={"email": email}, verified=True)


def small_case() -> list[bytes]:
    b_answer = ev("B", 12, "bot_message", text="shipped", step="lookup", outcome="answered")
    return [
        # A: low confidence -> escalated; CSAT 2.
        ev("A", 0, "conversation_started"),
        say("A", 1, "does the widget glork my calendar", "product_question", 0.3),
        ev("A", 9, "csat_submitted", score=2),
        # B: the bot answers and closes -> deflected; CSAT 5; one event redelivered.
        ev("B", 10, "conversation_started"),
        say("B", 11, "where is order O9", "order_status", 0.9, order_id="O9"),
        b_answer,
        b_answer,
        ev("B", 13, "conversation_closed", reason="resolved"),
        ev("B", 14, "csat_submitted", score=5),
        # C: refund (risk); the agent re-asks the order id; the ticket is reopened.
        ev("C", 20, "conversation_started"),
        who("C", 21, " A@X.com"),
        say("C", 22, "refund order O1 please", "refund", 0.95, order_id="O1"),
        ev("C", 23, "agent_message", text="order?", agent_id="a1", requested_fields=["order_id"]),
        ev("C", 30, "ticket_status_changed", ticket_id="1", status="solved"),
        ev("C", 50, "ticket_status_changed", ticket_id="1", status="reopened"),
        # D: the same requester, intent and order 20 minutes later -> a duplicate.
        ev("D", 40, "conversation_started"),
        who("D", 41, "a@x.com"),
        say("D", 42, "refund for O1, again", "refund", 0.95, order_id="O1"),
        # E: started nine days earlier: outside a 7-day window.
        ev("E", 0, "conversation_started", day=1),
        ev("E", 1, "handoff_requested", day=1),
        b"{not json",
    ]


def test_parse_since() -> None:
    assert parse_since("7d") == timedelta(days=7)
    assert parse_since("24h") == timedelta(hours=24)
    assert parse_since("2w") == timedelta(weeks=2)
    for bad in ["7", "0d", "1y", ""]:
        with pytest.raises(HandoffError):
            parse_since(bad)


def test_numbers_match_the_hand_computed_case() -> None:
    rec = read_events(small_case())
    assert len(rec.invalid) == 1
    r = build_report(rec, default_policy(), timedelta(days=7))
    assert r.end == datetime(2026, 1, 10, 10, 50, tzinfo=UTC)  # the newest event
    assert r.figures == {
        "conversations": 4,  # A, B, C, D; E started before the window
        "escalated": 3,  # A low_confidence, C and D risk_intent
        "deflected": 1,  # B
        "reopened": 1,  # C
        "duplicate_escalations": 1,  # D repeats C's email|refund|order_id=O1 in 60 min
        "reasks": 1,  # C
        "redelivered_events": 1,  # B's bot message
        "csat_responses": 2,
        "csat_average": 3.5,
    }
    sections = {s.title: s for s in r.sections}
    assert sections["Escalation reasons"].rows == [
        ["risk_intent", "2", "66.7%"],
        ["low_confidence", "1", "33.3%"],
    ]
    assert sections["Top escalation intents"].rows[0][:4] == ["refund", "2", "2", "100.0%"]
    gap = sections["Content gaps"].rows
    assert gap == [["product_question", "1", "“does the widget glork my calendar”"]]
    assert [row[0] for row in sections["Tickets reopened"].rows] == ["C"]
    assert sections["CSAT by intent"].rows == [
        ["order_status", "1", "5.00", "-", "5.00"],
        ["product_question", "1", "2.00", "2.00", "-"],
    ]


def test_now_pins_the_window() -> None:
    rec = read_events(small_case())
    wide = build_report(rec, default_policy(), timedelta(days=30))
    assert wide.figures["conversations"] == 5
    early = build_report(
        rec, default_policy(), timedelta(days=1), now=datetime(2026, 1, 1, 12, tzinfo=UTC)
    )
    assert early.figures["conversations"] == 1 and early.figures["escalated"] == 1


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.external: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tables += tag == "table"
        for k, v in attrs:
            if k in ("src", "href") and v:
                self.external.append(v)


def test_markdown_and_standalone_html() -> None:
    r = build_report(read_events(small_case()), default_policy(), timedelta(days=7))
    md = to_markdown(r)
    assert "## Content gaps" in md and "| refund | 2 | 2 | 100.0% |" in md
    page = to_html(r)
    checker = _Checker()
    checker.feed(page)
    assert checker.external == [] and checker.tables == 6
    assert "<script" not in page and page.startswith("<!DOCTYPE html>")


def test_cli_report(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(small_case()) + b"\n")
    out = tmp_path / "r.html"
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["report", "--events", str(events), "--format", "html", "--out", str(out)]) == 0
    assert "4 conversations" in buf.getvalue() and "<table>" in out.read_text()
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["report", "--since", "30d"]) == 0  # the bundled sample
    assert buf.getvalue().startswith("# Escalation review")
    assert main(["report", "--events", str(events), "--now", "2026-01-10"]) == 2
