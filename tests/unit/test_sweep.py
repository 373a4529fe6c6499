"""Threshold sweeps: parsing, monotonicity, and the hand-written SVG."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from handoff.cli import main
from handoff.core.policy import default_policy
from handoff.exceptions import HandoffError
from handoff.simulate import read_events, simulate
from handoff.sweep import parse_spec, plot, run_sweep, with_threshold

ROOT = Path(__file__).resolve().parents[2]
LABELLED = ROOT / "handoff" / "data" / "labelled_conversations.jsonl"


def test_parse_spec() -> None:
    s = parse_spec("product_question.threshold=0.3:0.9:0.1")
    assert s.name == "product_question" and s.is_intent
    assert s.values == (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    assert parse_spec("tiers.low.threshold=0.5:0.5:0.1").values == (0.5,)
    assert not parse_spec("default.threshold=0:1:0.5").is_intent
    for bad in [
        "refund=0:1:0.1",
        "x.threshold=0.9:0.1:0.1",
        "x.threshold=0:2:0.1",
        "x.threshold=0:1:0",
        "x.threshold=0:1:0.001",
    ]:
        with pytest.raises(HandoffError):
            parse_spec(bad)


def test_with_threshold_changes_one_value_only() -> None:
    p = default_policy()
    q = with_threshold(p, "order_status", 0.9)
    assert q.threshold("order_status") == 0.9
    assert q.threshold("refund") == p.threshold("refund")
    assert with_threshold(p, "tiers.high", 0.5).tiers["high"].threshold == 0.5
    assert with_threshold(p, "brand_new", 0.42).threshold("brand_new") == 0.42


@pytest.mark.parametrize("name", ["product_question", "order_status", "password_reset"])
def test_raising_a_threshold_never_removes_an_escalation(name: str) -> None:
    rec = read_events(LABELLED.read_bytes().splitlines())
    base = default_policy()
    values = [round(0.3 + 0.05 * i, 2) for i in range(14)]
    previous: set[str] | None = None
    for v in values:
        outs = simulate(rec, with_threshold(base, name, v))
        # Conversations whose only reason is low_confidence, at the highest threshold.
        escalated = {o.conversation_id for o in outs if o.escalated}
        if previous is not None:
            assert previous <= escalated, f"{name} at {v} dropped {previous - escalated}"
        previous = escalated
    points = run_sweep(rec, base, parse_spec(f"{name}.threshold=0.3:0.95:0.05"))
    assert [p.escalated for p in points] == sorted(p.escalated for p in points)
    assert [p.deflected for p in points] == sorted((p.deflected for p in points), reverse=True)
    assert [p.missed for p in points] == sorted((p.missed for p in points), reverse=True)


def test_low_confidence_only_conversations_escalate_monotonically() -> None:
    rec = read_events(LABELLED.read_bytes().splitlines())
    top = simulate(rec, with_threshold(default_policy(), "tiers.low", 1.0))
    only_lc = {o.conversation_id for o in top if o.reasons == ("low_confidence",)}
    assert len(only_lc) > 50
    counts = []
    for v in [0.2, 0.4, 0.5, 0.6, 0.7, 0.9]:
        p = with_threshold(default_policy(), "tiers.low", v)
        for name in ("product_question", "order_status", "password_reset"):
            p = with_threshold(p, name, v)
        outs = simulate(rec, p)
        counts.append(sum(o.escalated for o in outs if o.conversation_id in only_lc))
    assert counts == sorted(counts) and counts[0] < counts[-1]


def test_plot_is_valid_svg_with_three_series(tmp_path: Path) -> None:
    rec = read_events(LABELLED.read_bytes().splitlines())
    spec = parse_spec("product_question.threshold=0.4:0.8:0.1")
    svg = plot(run_sweep(rec, default_policy(), spec), spec, current=0.5)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}polyline")) == 3
    assert "missed escalations" in svg and "policy 0.5" in svg
    assert svg == plot(run_sweep(rec, default_policy(), spec), spec, current=0.5)


def test_cli_sweep_writes_plot(tmp_path: Path) -> None:
    out = tmp_path / "sweep.svg"
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(
            [
                "simulate",
                str(LABELLED),
                "--sweep",
                "product_question.threshold=0.4:0.9:0.1",
                "--plot",
                str(out),
            ]
        )
    assert rc == 0 and out.read_text().startswith("<svg")
    assert "<- policy" in buf.getvalue()
    buf = io.StringIO()
    with redirect_stdout(buf):
        main(
            [
                "simulate",
                str(LABELLED),
                "--sweep",
                "order_status.threshold=0.5:0.6:0.05",
                "--format",
                "csv",
            ]
        )
    assert buf.getvalue().splitlines()[0].startswith("threshold,conversations")
    assert len(buf.getvalue().splitlines()) == 4
