"""Prometheus rendering (validated by prometheus_client's parser) and the dashboard assets."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from handoff.core import metrics as m
from handoff.tables.metrics import summarize_partitions
from handoff.web import dashboard, prometheus
from tests.unit.test_metrics import run, two_conversations


def _families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _summary() -> dict[str, object]:
    totals, _ = run(two_conversations())
    totals = m.merge(totals, m.dead_letter_delta(), m.latency_delta(0.3, _state()))
    rows = {"0": {"total": totals, "watermark": 100.0, "minutes": {}, "hours": {}}}
    s = summarize_partitions(rows)
    s["cluster"] = {"complete": True, "partitions": [0, 1, 2, 3]}
    return s


def _state():  # type: ignore[no-untyped-def]
    from handoff.core.state import ConversationState

    return ConversationState(conversation_id="x", intent="refund", channel="web")


def test_prometheus_text_parses_with_types_names_and_labels() -> None:
    text = prometheus.render(_summary())
    fams = _families(text)
    assert all(name.startswith("handoff_") for name in fams)
    started = fams["handoff_conversations_started"]
    assert started.type == "counter"  # type: ignore[attr-defined]
    samples = {(s.labels["intent"], s.labels["channel"]): s.value for s in started.samples}  # type: ignore[attr-defined]
    assert samples == {("unknown", "web"): 1, ("unknown", "mobile"): 1}
    reasons = fams["handoff_escalation_reasons"]
    assert [s.labels for s in reasons.samples] == [  # type: ignore[attr-defined]
        {"intent": "refund", "channel": "web", "reason": "risk_intent"}
    ]
    assert fams["handoff_dead_letters"].samples[0].value == 1  # type: ignore[attr-defined]
    sla = fams["handoff_agent_first_response_seconds"]
    assert sla.type == "histogram"  # type: ignore[attr-defined]
    by_le = {s.labels["le"]: s.value for s in sla.samples if s.name.endswith("_bucket")}  # type: ignore[attr-defined]
    assert by_le["60"] == 0 and by_le["120"] == 1 and by_le["+Inf"] == 1  # cumulative
    count = [s.value for s in sla.samples if s.name.endswith("_count")]  # type: ignore[attr-defined]
    assert count == [1]
    lat = fams["handoff_ticket_command_latency_seconds"]
    assert [s.value for s in lat.samples if s.name.endswith("_count")] == [1]  # type: ignore[attr-defined]
    csat = fams["handoff_csat_score_average"]
    assert [(s.labels, s.value) for s in csat.samples] == [  # type: ignore[attr-defined]
        ({"intent": "refund", "channel": "web"}, 4.0)
    ]
    assert fams["handoff_resolution_rate"].samples[0].value == 0.5  # type: ignore[attr-defined]
    assert fams["handoff_metrics_complete"].samples[0].value == 1  # type: ignore[attr-defined]
    assert fams["handoff_sla_within_target_ratio"].samples[0].value == 1  # type: ignore[attr-defined]
    types = re.findall(r"^# TYPE (\S+)", text, flags=re.M)
    assert len(types) == len(set(types)) == len(fams)  # no family declared twice
    assert text.endswith("\n")


def test_label_values_are_escaped_and_unknown_rates_are_nan() -> None:
    counters = {m.key("escalations", 'we"ird\\intent\n', "web"): 2.0}
    text = prometheus.render({"counters": counters, "rates": {"resolution_rate": None}})
    fams = _families(text)
    [sample] = fams["handoff_escalations"].samples  # type: ignore[attr-defined]
    assert sample.labels["intent"] == 'we"ird\\intent\n'
    rate = fams["handoff_resolution_rate"].samples[0].value  # type: ignore[attr-defined]
    assert rate != rate  # NaN


def test_the_dashboard_uses_only_packaged_assets() -> None:
    html = dashboard.page()
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs and all(r.startswith("/") for r in refs), refs
    for ref in refs:
        if ref.startswith("/dashboard/static/"):
            asset = dashboard.asset(ref.rsplit("/", 1)[1])
            assert asset is not None and asset[0]
    js = dashboard.asset("dashboard.js")
    assert js is not None and b"/metrics/summary" in js[0]
    assert b"http://" not in js[0].replace(b"http://www.w3.org/2000/svg", b"")
    assert dashboard.asset("../views.py") is None
    for rate in m.rates({}):
        assert f'data-rate="{rate}"' in html
