"""The metrics summary in Prometheus text format (exposition format 0.0.4).

Names are ``handoff_*``; counters end in ``_total``; labels are ``intent`` and ``channel``
on every per-conversation family, plus ``reason`` on escalation reasons and ``kind`` on
connector failures. Rates are gauges without labels (PromQL can derive per-label rates
from the counters), except ``handoff_csat_score_average`` by intent and channel.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from handoff.core import metrics as m

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_HELP: dict[str, str] = {
    "duplicate_events": "Inputs ignored because their id was already applied.",
    "dead_letters": "Inputs that could not be processed (sent to dead-letters).",
    "conversations_started": "Conversations started.",
    "conversations_classified": "Conversations that got their first intent.",
    "conversations_closed": "Conversations closed (first close of each).",
    "resolved_by_bot": "Conversations the bot resolved without a human.",
    "resolved_by_agent": "Escalated conversations a human resolved.",
    "abandoned": "Conversations abandoned before escalation.",
    "timed_out": "Conversations that timed out before escalation.",
    "escalations": "Escalations to a human.",
    "escalation_reasons": "Escalation reasons reported at escalation.",
    "reopened": "Tickets reopened.",
    "ticket_creates": "Ticket create commands emitted.",
    "ticket_updates": "Ticket update commands emitted.",
    "tickets_created": "Tickets the helpdesk reported created.",
    "tickets_deduplicated": "Ticket creates the helpdesk resolved to an existing ticket.",
    "duplicate_tickets": "Duplicate tickets (deduplicated results or a second create).",
    "crm_commands": "CRM note commands emitted.",
    "crm_notes_created": "CRM notes created.",
    "crm_notes_updated": "CRM notes updated.",
    "crm_matched": "CRM notes attached to exactly one contact.",
    "crm_unmatched": "CRM notes whose contact could not be matched.",
    "connector_failures": "Connector commands that failed.",
    "agent_messages": "Agent messages.",
    "agent_reask_messages": "Agent messages asking for a field the bot had collected.",
    "agent_reasked_fields": "Fields agents asked for that the bot had collected.",
    "sla_within_target": "First agent replies within the SLA target.",
}
_RATES = (
    "resolution_rate",
    "escalation_rate",
    "duplicate_ticket_rate",
    "crm_match_rate",
    "agent_reask_rate",
    "csat_average",
    "sla_within_target",
)
_HISTOGRAMS = {
    "sla_seconds": (
        "handoff_agent_first_response_seconds",
        "Event time from escalation to the first agent reply.",
        m.SLA_BUCKETS,
        "sla_responses",
    ),
    "ticket_latency_seconds": (
        "handoff_ticket_command_latency_seconds",
        "Wall time from the escalating record to its acknowledged ticket command.",
        m.LATENCY_BUCKETS,
        "ticket_latency_count",
    ),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Mapping[str, str]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs.items()) + "}"


def _num(x: float) -> str:
    if x != x:
        return "NaN"
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def _extra(extra: str) -> dict[str, str]:
    if not extra:
        return {}
    k, _, v = extra.partition("=")
    return {k: v}


def render(summary: Mapping[str, Any]) -> str:
    """Text exposition of a summary from :func:`handoff.tables.metrics.summarize_partitions`."""
    counters: Mapping[str, float] = summary.get("counters", {})
    by_name: dict[str, list[tuple[str, str, str, float]]] = defaultdict(list)
    for k, v in sorted(counters.items()):
        name, intent, channel, extra = m.split(k)
        by_name[name].append((intent, channel, extra, v))
    lines: list[str] = []
    for name in m.COUNTERS:
        if name not in _HELP:
            continue
        family = f"handoff_{name}_total"
        lines += [f"# HELP {family} {_HELP[name]}", f"# TYPE {family} counter"]
        for intent, channel, extra, v in by_name.get(name, []):
            labels = {"intent": intent, "channel": channel, **_extra(extra)}
            lines.append(f"{family}{_labels(labels)} {_num(v)}")
    lines += _csat(by_name)
    for base, (family, help_text, bounds, count_name) in _HISTOGRAMS.items():
        lines += _histogram(by_name, base, family, help_text, bounds, count_name)
    for rate in _RATES:
        # ``_ratio`` where a counter already owns the plain name.
        family = f"handoff_{rate}_ratio" if rate in _HELP else f"handoff_{rate}"
        value = summary.get("rates", {}).get(rate)
        lines += [
            f"# HELP {family} {rate.replace('_', ' ').capitalize()} over all conversations.",
            f"# TYPE {family} gauge",
            f"{family} {_num(float('nan') if value is None else value)}",
        ]
    cluster = summary.get("cluster", {})
    lines += [
        "# HELP handoff_metrics_partitions Partitions whose metrics this answer includes.",
        "# TYPE handoff_metrics_partitions gauge",
        f"handoff_metrics_partitions {len(cluster.get('partitions', []))}",
        "# HELP handoff_metrics_complete 1 when every partition's metrics answered.",
        "# TYPE handoff_metrics_complete gauge",
        f"handoff_metrics_complete {1 if cluster.get('complete') else 0}",
    ]
    return "\n".join(lines) + "\n"


def _csat(by_name: Mapping[str, list[tuple[str, str, str, float]]]) -> list[str]:
    sums = {(i, c): v for i, c, _, v in by_name.get("csat_sum", [])}
    counts = {(i, c): v for i, c, _, v in by_name.get("csat_count", [])}
    family = "handoff_csat_score"
    lines = [f"# HELP {family} CSAT scores (1-5) submitted.", f"# TYPE {family} summary"]
    for i, c in sorted(counts):
        labels = _labels({"intent": i, "channel": c})
        lines.append(f"{family}_sum{labels} {_num(sums.get((i, c), 0))}")
        lines.append(f"{family}_count{labels} {_num(counts[(i, c)])}")
    lines += [
        "# HELP handoff_csat_score_average Average CSAT score by intent and channel.",
        "# TYPE handoff_csat_score_average gauge",
    ]
    for i, c in sorted(counts):
        if counts[(i, c)]:
            avg = sums.get((i, c), 0) / counts[(i, c)]
            lines.append(
                f"handoff_csat_score_average{_labels({'intent': i, 'channel': c})} {_num(avg)}"
            )
    return lines


def _histogram(
    by_name: Mapping[str, list[tuple[str, str, str, float]]],
    base: str,
    family: str,
    help_text: str,
    bounds: tuple[float, ...],
    count_name: str,
) -> list[str]:
    lines = [f"# HELP {family} {help_text}", f"# TYPE {family} histogram"]
    buckets: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for i, c, extra, v in by_name.get(f"{base}_bucket", []):
        le = extra.removeprefix("le=")
        buckets[(i, c)][le] = buckets[(i, c)].get(le, 0) + v
    sums = {(i, c): v for i, c, _, v in by_name.get(f"{base}_sum", [])}
    counts = {(i, c): v for i, c, _, v in by_name.get(count_name, [])}
    for i, c in sorted(buckets.keys() | counts.keys()):
        running = 0.0
        for le in [*(m.fmt_number(b) for b in bounds), "+Inf"]:
            running += buckets[(i, c)].get(le, 0)
            lines.append(
                f"{family}_bucket{_labels({'intent': i, 'channel': c, 'le': le})} {_num(running)}"
            )
        labels = _labels({"intent": i, "channel": c})
        lines.append(f"{family}_sum{labels} {_num(sums.get((i, c), 0))}")
        lines.append(f"{family}_count{labels} {_num(counts.get((i, c), running))}")
    return lines


__all__ = ["CONTENT_TYPE", "render"]
