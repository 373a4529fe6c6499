"""Metrics math: what one decision adds to the counters, and the rates read from them. Pure.

A metric is a flat counter keyed ``"name|intent|channel|extra"`` (``extra`` is ``""`` or
one ``label=value``, e.g. ``reason=risk_intent`` or ``le=300``). Aggregates are plain
``dict[str, float]`` that merge by addition, so a partition's window, a worker's
partitions and the whole cluster all fold the same way (:func:`merge`), and
:func:`summarize` turns any aggregate into totals, rates and breakdowns.

Attribution rules (chosen here; the contract leaves them open):

- Every increment carries the conversation's intent and channel *as of that input*
  (``unknown`` when not yet known). A conversation starts without an intent, so the
  per-intent escalation rate divides by ``conversations_classified`` (a conversation
  counted once, when it first gets an intent); overall and per channel it divides by
  ``conversations_started``.
- Resolution rate: conversations the bot resolved (closed ``resolved`` before any
  escalation) over conversations closed (first ``conversation_closed`` of each).
- Duplicate tickets: ticket results ``deduplicated`` (the helpdesk already had one) plus
  any second ``create`` command for a conversation that already has a ticket; the rate
  divides by ticket create commands.
- CRM match: the first ``created``/``updated`` (matched, when it names a contact) or
  ``unmatched_contact`` result of a conversation's note.
- Agent re-ask: an ``agent_message`` whose ``requested_fields`` (or, when absent, whose
  text: email, phone, order, invoice) name a field the bot already collected.
- SLA: seconds of *event time* from the escalating event (or the reopen) to the first
  ``agent_message`` after it; tracked with a small per-conversation :class:`PendingSla`.
- Ticket latency: wall-clock seconds from the escalating record's broker timestamp to the
  acknowledged ticket command; the only metric that depends on the clock.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handoff.core.decide import Decision
from handoff.core.state import ConversationState
from handoff.streams import events as ev
from handoff.streams.commands import ConnectorResult, TicketCommand

Counters = dict[str, float]

UNKNOWN = "unknown"
SLA_BUCKETS: tuple[float, ...] = (60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 86400)
LATENCY_BUCKETS: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
DEFAULT_SLA_TARGET_SECONDS = 900.0
MINUTE = 60
HOUR = 3600
MINUTE_RETENTION = 2 * HOUR  # minute windows kept this long behind the watermark
HOUR_RETENTION = 48 * HOUR

# Counters that are a function of the input alone (equal in every replay of it).
COUNTERS: tuple[str, ...] = (
    "duplicate_events",
    "dead_letters",
    "conversations_started",
    "conversations_classified",
    "conversations_closed",
    "resolved_by_bot",
    "resolved_by_agent",
    "abandoned",
    "timed_out",
    "escalations",
    "escalation_reasons",
    "reopened",
    "ticket_creates",
    "ticket_updates",
    "tickets_created",
    "tickets_deduplicated",
    "duplicate_tickets",
    "crm_commands",
    "crm_notes_created",
    "crm_notes_updated",
    "crm_matched",
    "crm_unmatched",
    "connector_failures",
    "agent_messages",
    "agent_reask_messages",
    "agent_reasked_fields",
    "csat_sum",
    "csat_count",
    "sla_responses",
    "sla_within_target",
    "sla_seconds_sum",
    "sla_seconds_bucket",
)
CLOCK_COUNTERS: tuple[str, ...] = (
    "ticket_latency_count",
    "ticket_latency_seconds_sum",
    "ticket_latency_seconds_bucket",
)

_TEXT_FIELDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\be-?mail\b", re.I), "email"),
    (re.compile(r"\bphone\b|\bnumber to call\b", re.I), "phone"),
    (re.compile(r"\border\b", re.I), "order_id"),
    (re.compile(r"\binvoice\b", re.I), "invoice_id"),
)


def key(name: str, intent: str = UNKNOWN, channel: str = UNKNOWN, extra: str = "") -> str:
    return f"{name}|{intent}|{channel}|{extra}"


def split(k: str) -> tuple[str, str, str, str]:
    name, intent, channel, extra = k.split("|", 3)
    return name, intent, channel, extra


def merge(*parts: Mapping[str, float]) -> Counters:
    """The sum of aggregates (zeros dropped, so equal totals compare equal)."""
    out: Counters = {}
    for part in parts:
        for k, v in part.items():
            out[k] = out.get(k, 0) + v
    return {k: v for k, v in out.items() if v}


def add_into(target: dict[str, float], delta: Mapping[str, float]) -> None:
    for k, v in delta.items():
        target[k] = target.get(k, 0) + v


@dataclass(frozen=True, slots=True)
class PendingSla:
    """An escalation waiting for its first agent reply: event time and attempt."""

    at: datetime
    attempt: int


@dataclass(frozen=True, slots=True)
class Step:
    """What one input adds: counters, and the conversation's SLA bookkeeping.

    ``pending`` is the new pending SLA when ``pending_changed`` (``None``: cleared).
    """

    delta: Counters
    pending: PendingSla | None = None
    pending_changed: bool = False


def _labels(state: ConversationState) -> tuple[str, str]:
    return state.intent or UNKNOWN, state.channel or UNKNOWN


def _bucket_keys(name: str, value: float, bounds: tuple[float, ...], i: str, c: str) -> list[str]:
    # Stored non-cumulative (one bucket per observation); cumulated when rendered.
    pos = bisect.bisect_left(bounds, value)
    le = "+Inf" if pos == len(bounds) else fmt_number(bounds[pos])
    return [key(name, i, c, f"le={le}")]


def fmt_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _reasked_fields(event: ev.AgentMessage, prev: ConversationState) -> int:
    known = (
        prev.entities.keys() | prev.identity.keys() | prev.claimed_identity.keys()
    ) | prev.context.keys()
    if event.requested_fields is not None:
        asked = set(event.requested_fields)
    else:
        asked = {f for rx, f in _TEXT_FIELDS if rx.search(event.text)}
    return sum(1 for f in asked if f in known)


def event_step(
    prev: ConversationState | None,
    event: ev.Event,
    decision: Decision,
    pending: PendingSla | None = None,
    *,
    sla_target: float = DEFAULT_SLA_TARGET_SECONDS,
) -> Step:
    """Counters for one applied input event (``prev``: the state before it)."""
    d: Counters = {}
    new = decision.state
    i, c = _labels(new)

    def inc(name: str, by: float = 1, extra: str = "") -> None:
        k = key(name, i, c, extra)
        d[k] = d.get(k, 0) + by

    if decision.duplicate:
        inc("duplicate_events")
        return Step(d)
    old = prev if prev is not None else ConversationState(conversation_id=new.conversation_id)
    etype = event.type
    if etype == "conversation_started" and old.started_at is None:
        inc("conversations_started")
    if old.intent is None and new.intent is not None:
        inc("conversations_classified")
    if etype == "conversation_closed" and old.closed_reason is None:
        inc("conversations_closed")
    if new.disposition != old.disposition:
        name = {
            "resolved_by_bot": "resolved_by_bot",
            "resolved": "resolved_by_agent",
            "abandoned": "abandoned",
            "timed_out": "timed_out",
            "reopened": "reopened",
        }.get(new.disposition or "")
        if name:
            inc(name)
    if decision.escalated:
        inc("escalations")
        for r in decision.reasons:
            inc("escalation_reasons", extra=f"reason={r}")
    for cmd in decision.commands:
        if isinstance(cmd, TicketCommand):
            if cmd.action == "create":
                inc("ticket_creates")
                if old.ticket_id is not None:
                    inc("duplicate_tickets")
            else:
                inc("ticket_updates")
        else:
            inc("crm_commands")
    if isinstance(event, ev.CsatSubmitted):
        if old.csat is None:
            inc("csat_sum", event.score)
            inc("csat_count")
        elif old.csat != event.score:
            inc("csat_sum", event.score - old.csat)
    step_pending, changed = pending, False
    if new.attempt != old.attempt:  # escalated or reopened: the SLA clock starts
        step_pending, changed = PendingSla(event.occurred_at, new.attempt), True
    if isinstance(event, ev.AgentMessage):
        inc("agent_messages")
        fields = _reasked_fields(event, old)
        if fields:
            inc("agent_reask_messages")
            inc("agent_reasked_fields", fields)
        if pending is not None and pending.attempt == new.attempt and not changed:
            secs = max(0.0, (event.occurred_at - pending.at).total_seconds())
            inc("sla_responses")
            inc("sla_seconds_sum", secs)
            if secs <= sla_target:
                inc("sla_within_target")
            for k in _bucket_keys("sla_seconds_bucket", secs, SLA_BUCKETS, i, c):
                d[k] = d.get(k, 0) + 1
            step_pending, changed = None, True
    return Step(d, step_pending, changed)


def result_step(
    prev: ConversationState | None, result: ConnectorResult, decision: Decision
) -> Step:
    """Counters for one connector result folded into the state."""
    d: Counters = {}
    new = decision.state
    i, c = _labels(new)

    def inc(name: str, extra: str = "") -> None:
        k = key(name, i, c, extra)
        d[k] = d.get(k, 0) + 1

    if decision.duplicate:
        inc("duplicate_events")
        return Step(d)
    old = prev if prev is not None else ConversationState(conversation_id=new.conversation_id)
    if result.status == "failed":
        inc("connector_failures", f"kind={result.kind}")
    elif result.kind == "ticket":
        if result.status == "created":
            inc("tickets_created")
            if old.ticket_id is not None and old.ticket_id != result.external_id:
                inc("duplicate_tickets")
        elif result.status == "deduplicated":
            inc("tickets_deduplicated")
            inc("duplicate_tickets")
    else:
        if result.status == "created":
            inc("crm_notes_created")
        elif result.status == "updated":
            inc("crm_notes_updated")
        if old.crm_note not in ("created", "unmatched"):
            if result.status == "unmatched_contact" or not new.crm_contact_id:
                inc("crm_unmatched")
            else:
                inc("crm_matched")
    for cmd in decision.commands:
        if isinstance(cmd, TicketCommand):
            inc("ticket_creates" if cmd.action == "create" else "ticket_updates")
        else:
            inc("crm_commands")
    return Step(d)


def dead_letter_delta() -> Counters:
    return {key("dead_letters"): 1}


def latency_delta(seconds: float, state: ConversationState) -> Counters:
    """Escalating record (broker timestamp) to acknowledged ticket command, wall clock."""
    i, c = _labels(state)
    d = {
        key("ticket_latency_count", i, c): 1.0,
        key("ticket_latency_seconds_sum", i, c): max(0.0, seconds),
    }
    for k in _bucket_keys("ticket_latency_seconds_bucket", seconds, LATENCY_BUCKETS, i, c):
        d[k] = 1.0
    return d


def deterministic(counters: Mapping[str, float]) -> Counters:
    """The counters that do not depend on the wall clock (for comparing replays)."""
    return {k: v for k, v in counters.items() if split(k)[0] not in CLOCK_COUNTERS}


# --- windows -------------------------------------------------------------------------------


def window_start(ts: float, size: int) -> int:
    return int(ts // size) * size


def expired(start: int, size: int, watermark: float) -> bool:
    retention = MINUTE_RETENTION if size == MINUTE else HOUR_RETENTION
    return start + size <= watermark - retention


# --- reading -------------------------------------------------------------------------------


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 6) if den else None


def rates(t: Mapping[str, float], *, by_intent: bool = False) -> dict[str, float | None]:
    """Rates from totals by metric name (``t["escalations"]`` etc.)."""
    g = t.get
    conversations = g("conversations_classified", 0) if by_intent else g("conversations_started", 0)
    return {
        "resolution_rate": _ratio(g("resolved_by_bot", 0), g("conversations_closed", 0)),
        "escalation_rate": _ratio(g("escalations", 0), conversations),
        "duplicate_ticket_rate": _ratio(g("duplicate_tickets", 0), g("ticket_creates", 0)),
        "crm_match_rate": _ratio(g("crm_matched", 0), g("crm_matched", 0) + g("crm_unmatched", 0)),
        "agent_reask_rate": _ratio(g("agent_reask_messages", 0), g("agent_messages", 0)),
        "csat_average": _ratio(g("csat_sum", 0), g("csat_count", 0)),
        "sla_within_target": _ratio(g("sla_within_target", 0), g("sla_responses", 0)),
    }


def percentile(buckets: Mapping[float, float], q: float) -> float | None:
    """The ``q`` quantile from non-cumulative buckets ``{upper_bound: count}``.

    Linear within the bucket, like Prometheus' ``histogram_quantile``; the +Inf bucket
    answers with the largest finite bound.
    """
    total = sum(buckets.values())
    if not total:
        return None
    rank = q * total
    seen = 0.0
    lower = 0.0
    finite = [b for b in sorted(buckets) if b != float("inf")]
    for bound in sorted(buckets):
        n = buckets[bound]
        if seen + n >= rank and n:
            if bound == float("inf"):
                return finite[-1] if finite else None
            return round(lower + (bound - lower) * (rank - seen) / n, 3)
        seen += n
        lower = bound
    return None


def _buckets(
    counters: Mapping[str, float], name: str, bounds: tuple[float, ...]
) -> dict[float, float]:
    # Every bound present (empty ones too): a bucket's lower edge is the bound before it.
    out: dict[float, float] = dict.fromkeys((*bounds, float("inf")), 0.0)
    for k, v in counters.items():
        n, _, _, extra = split(k)
        if n == name:
            bound = float(extra.removeprefix("le="))
            out[bound] = out.get(bound, 0) + v
    return out


def group(counters: Mapping[str, float], by: str | None = None) -> dict[str, dict[str, float]]:
    """Totals per metric name, grouped by ``intent``, ``channel``, ``reason`` or not at all."""
    out: dict[str, dict[str, float]] = {}
    for k, v in counters.items():
        name, intent, channel, extra = split(k)
        if by == "reason":
            if not extra.startswith("reason="):
                continue
            label = extra.removeprefix("reason=")
        else:
            label = {"intent": intent, "channel": channel}.get(by or "", "all")
        row = out.setdefault(label, {})
        row[name] = row.get(name, 0) + v
    return out


def sla_summary(counters: Mapping[str, float], target: float) -> dict[str, Any]:
    b = _buckets(counters, "sla_seconds_bucket", SLA_BUCKETS)
    lat = _buckets(counters, "ticket_latency_seconds_bucket", LATENCY_BUCKETS)
    t = group(counters).get("all", {})
    return {
        "target_seconds": target,
        "responses": t.get("sla_responses", 0),
        "within_target": _ratio(t.get("sla_within_target", 0), t.get("sla_responses", 0)),
        "p50_seconds": percentile(b, 0.5),
        "p90_seconds": percentile(b, 0.9),
        "p99_seconds": percentile(b, 0.99),
        "ticket_latency_p50_seconds": percentile(lat, 0.5),
        "ticket_latency_p99_seconds": percentile(lat, 0.99),
    }


def _clean(row: Mapping[str, float]) -> dict[str, float]:
    return {k: v for k, v in sorted(row.items()) if not k.endswith("_bucket")}


def summarize(
    total: Mapping[str, float],
    minutes: Mapping[int, Mapping[str, float]] | None = None,
    hours: Mapping[int, Mapping[str, float]] | None = None,
    *,
    watermark: float | None = None,
    sla_target: float = DEFAULT_SLA_TARGET_SECONDS,
) -> dict[str, Any]:
    """The JSON summary: totals, rates, breakdowns by intent/channel/reason, trends."""
    totals = _clean(group(total).get("all", {}))

    def breakdown(by: str) -> dict[str, Any]:
        return {
            label: {"counts": _clean(row), "rates": rates(row, by_intent=by == "intent")}
            for label, row in sorted(group(total, by).items())
        }

    out: dict[str, Any] = {
        "totals": totals,
        "rates": rates(totals),
        "by_intent": breakdown("intent"),
        "by_channel": breakdown("channel"),
        "by_reason": {
            r: row.get("escalation_reasons", 0) for r, row in group(total, "reason").items()
        },
        "sla": sla_summary(total, sla_target),
        "watermark": watermark,
    }
    if minutes is not None and hours is not None:
        out["trend"] = {
            "minutes": _trend(minutes, MINUTE, 60, watermark),
            "hours": _trend(hours, HOUR, 24, watermark),
        }
    return out


def _trend(
    windows: Mapping[int, Mapping[str, float]], size: int, count: int, watermark: float | None
) -> list[dict[str, Any]]:
    if watermark is None and not windows:
        return []
    last = window_start(watermark if watermark is not None else max(windows), size)
    rows = []
    for start in range(last - (count - 1) * size, last + size, size):
        t = group(windows.get(start, {})).get("all", {})
        rows.append(
            {
                "start": start,
                "escalations": t.get("escalations", 0),
                "conversations_started": t.get("conversations_started", 0),
                "conversations_closed": t.get("conversations_closed", 0),
                "resolved_by_bot": t.get("resolved_by_bot", 0),
                "dead_letters": t.get("dead_letters", 0),
                "rates": rates(t),
            }
        )
    return rows


def merge_windows(parts: Iterable[Mapping[int, Mapping[str, float]]]) -> dict[int, Counters]:
    out: dict[int, Counters] = {}
    for part in parts:
        for start, counters in part.items():
            add_into(out.setdefault(int(start), {}), counters)
    return out
