"""The weekly review for a support lead: ``handoff report --since 7d --events FILE``.

Source: a file of contract events (JSON lines), replayed through the policy exactly as
``handoff simulate`` does, so the numbers are what the processor decided (or would decide)
for those conversations. A running deployment's metrics tables are another source, being
built separately (``handoff.core.metrics`` / ``handoff.tables``); this module does not
depend on them.

Window: ``--since 7d`` (also ``24h``, ``90m``, ``2w``) counts back from the newest event in
the file, so the same file always gives the same report; ``--now`` pins the end instead. A
conversation belongs to the window when it *started* in it (its earliest event), and all of
its events count, also those after the window's end.

Definitions: *deflected* = closed as resolved by the bot without escalation; *reopened* = a
ticket that came back (``ticket_status_changed`` to ``reopened``); *duplicate escalation* =
an escalation with the same requester email, intent and order or invoice id as an earlier
one within the policy's dedupe window (the deployment merges it into the open ticket);
*re-ask rate* = escalated conversations in which an agent asked for a field the bot had
already collected, over escalated conversations; *content gap* = an intent whose
escalations fired ``low_confidence``, with the customer's words from those messages.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from pathlib import Path

from handoff.core.commands import dedupe_key
from handoff.core.policy import Policy, default_policy, load_policy
from handoff.exceptions import HandoffError
from handoff.simulate import Outcome, Recording, load_events, simulate

DEFAULT_EVENTS = Path(__file__).parent / "data" / "sample_conversations.jsonl"
_SINCE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNIT = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
TOP = 10


def parse_since(text: str) -> timedelta:
    m = _SINCE.match(text)
    if not m or int(m.group(1)) == 0:
        raise HandoffError(f"--since {text!r}: expected a positive duration like 7d, 24h, 90m, 2w")
    return timedelta(**{_UNIT[m.group(2)]: int(m.group(1))})


@dataclass
class Section:
    title: str
    note: str = ""
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Report:
    title: str
    start: datetime
    end: datetime
    sections: list[Section]
    figures: dict[str, float | int]  # the headline numbers, for tests and JSON


def _pct(n: int, d: int) -> str:
    return f"{100 * n / d:.1f}%" if d else "-"


def duplicate_escalations(outcomes: list[Outcome], window_minutes: int) -> set[str]:
    """Conversations whose escalation repeats an earlier one's dedupe key within the window."""
    escalations = sorted(
        (o.state.escalated_at, o.conversation_id, key)
        for o in outcomes
        if o.escalated and o.state.escalated_at and (key := dedupe_key(o.state))
    )
    last: dict[str, datetime] = {}
    dups: set[str] = set()
    window = timedelta(minutes=window_minutes)
    for at, cid, key in escalations:
        seen = last.get(key)
        if seen is not None and at - seen <= window:
            dups.add(cid)
        else:
            last[key] = at  # a new ticket: the window restarts from it
    return dups


def build_report(
    rec: Recording, policy: Policy, since: timedelta, now: datetime | None = None
) -> Report:
    """Replay, keep the conversations that started in the window, and tabulate."""
    starts = {cid: evs[0].occurred_at for cid, evs in rec.conversations.items() if evs}
    newest = max((evs[-1].occurred_at for evs in rec.conversations.values() if evs), default=None)
    end = now or newest
    if end is None:
        raise HandoffError("no valid events: nothing to report on (and no --now given)")
    start = end - since
    inside = Recording(
        conversations={c: e for c, e in rec.conversations.items() if start <= starts[c] <= end},
        labels=rec.labels,
    )
    outs = simulate(inside, policy)
    esc = [o for o in outs if o.escalated]
    n, ne = len(outs), len(esc)
    deflected = sum(o.deflected for o in outs)
    reopened = [o for o in outs if o.state.attempt > 1 or o.disposition == "reopened"]
    dups = duplicate_escalations(outs, policy.dedupe_window_minutes)
    reasks = [o for o in esc if o.state.agent_reasks > 0]
    redelivered = sum(o.duplicates for o in outs)
    csat = [o.state.csat for o in outs if o.state.csat is not None]
    figures: dict[str, float | int] = {
        "conversations": n,
        "escalated": ne,
        "deflected": deflected,
        "reopened": len(reopened),
        "duplicate_escalations": len(dups),
        "reasks": len(reasks),
        "redelivered_events": redelivered,
        "csat_responses": len(csat),
        "csat_average": round(sum(csat) / len(csat), 2) if csat else 0.0,
    }
    overview = Section(
        "Overview",
        f"{n} conversations started between {start.isoformat()} and {end.isoformat()}.",
        ["measure", "value"],
        [
            ["conversations", str(n)],
            ["escalated to an agent", f"{ne} ({_pct(ne, n)})"],
            ["deflected (resolved by the bot)", f"{deflected} ({_pct(deflected, n)})"],
            ["tickets reopened", f"{len(reopened)} ({_pct(len(reopened), ne)} of escalations)"],
            ["duplicate escalations", f"{len(dups)} ({_pct(len(dups), ne)} of escalations)"],
            ["agent re-ask rate", f"{len(reasks)} ({_pct(len(reasks), ne)} of escalations)"],
            ["redelivered events (ignored)", str(redelivered)],
            ["CSAT", f"{figures['csat_average']} from {len(csat)} responses" if csat else "-"],
        ],
    )
    return Report(
        "Escalation review",
        start,
        end,
        [
            overview,
            _top_intents(outs),
            _reasons(esc),
            _content_gaps(esc),
            _reopened(reopened),
            _csat(outs),
        ],
        figures,
    )


def _top_intents(outs: list[Outcome]) -> Section:
    by: dict[str, list[Outcome]] = defaultdict(list)
    for o in outs:
        by[o.intent].append(o)
    ranked = sorted(by.items(), key=lambda kv: (-sum(o.escalated for o in kv[1]), kv[0]))
    rows = []
    for intent, group in ranked[:TOP]:
        e = sum(o.escalated for o in group)
        if not e:
            continue
        reasons = Counter(r for o in group if o.escalated for r in o.reasons)
        top = ", ".join(f"{r} {c}" for r, c in reasons.most_common(3))
        rows.append([intent, str(e), str(len(group)), _pct(e, len(group)), top])
    return Section(
        "Top escalation intents",
        "Intents ranked by escalations; the rate is over the intent's conversations.",
        ["intent", "escalations", "conversations", "escalation rate", "top reasons"],
        rows,
    )


def _reasons(esc: list[Outcome]) -> Section:
    counts = Counter(r for o in esc for r in o.reasons)
    rows = [[r, str(c), _pct(c, len(esc))] for r, c in counts.most_common()]
    return Section(
        "Escalation reasons",
        "An escalation can have several reasons; shares are of escalations.",
        ["reason", "escalations", "share"],
        rows,
    )


def _content_gaps(esc: list[Outcome]) -> Section:
    by: dict[str, list[Outcome]] = defaultdict(list)
    for o in esc:
        if "low_confidence" in o.reasons:
            by[o.intent].append(o)
    rows = []
    for intent, group in sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:TOP]:
        phrasings = list(dict.fromkeys(p for o in group for p in o.phrasings))[:3]
        rows.append([intent, str(len(group)), " / ".join(f"“{p[:120]}”" for p in phrasings)])
    return Section(
        "Content gaps",
        "Intents with the most low-confidence escalations: the bot did not understand. "
        "The phrasings are candidates for training data or a help article.",
        ["intent", "low-confidence escalations", "sample customer phrasings"],
        rows,
    )


def _reopened(reopened: list[Outcome]) -> Section:
    rows = [
        [o.conversation_id, o.intent, ", ".join(o.reasons) or "-", str(o.state.attempt)]
        for o in reopened[:TOP]
    ]
    more = f" Showing {TOP} of {len(reopened)}." if len(reopened) > TOP else ""
    return Section(
        "Tickets reopened",
        f"Tickets that came back after being solved.{more}",
        ["conversation", "intent", "original reasons", "attempt"],
        rows,
    )


def _csat(outs: list[Outcome]) -> Section:
    by: dict[str, list[Outcome]] = defaultdict(list)
    for o in outs:
        if o.state.csat is not None:
            by[o.intent].append(o)

    def avg(group: list[Outcome]) -> str:
        scores = [o.state.csat for o in group if o.state.csat is not None]
        return f"{sum(scores) / len(scores):.2f}" if scores else "-"

    rows = [
        [
            intent,
            str(len(group)),
            avg(group),
            avg([o for o in group if o.escalated]),
            avg([o for o in group if not o.escalated]),
        ]
        for intent, group in sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    return Section(
        "CSAT by intent",
        "Average score (1-5), overall and split by who handled the conversation.",
        ["intent", "responses", "average", "with an agent", "bot only"],
        rows,
    )


# --- rendering -----------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(r: Report) -> str:
    out = [f"# {r.title}", "", f"Window: {r.start.isoformat()} to {r.end.isoformat()}", ""]
    for s in r.sections:
        out += [f"## {s.title}", ""]
        if s.note:
            out += [s.note, ""]
        if not s.rows:
            out += ["None in this window.", ""]
            continue
        out.append("| " + " | ".join(s.headers) + " |")
        out.append("|" + "|".join("---" for _ in s.headers) + "|")
        out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in s.rows]
        out.append("")
    return "\n".join(out)


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}"
    "th,td{border:1px solid #ccc;padding:.35em .6em;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}p.note{color:#555}"
)


def to_html(r: Report) -> str:
    """A standalone page: inline CSS, no scripts, no external assets."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(r.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(r.title)}</h1>",
        f"<p>Window: {escape(r.start.isoformat())} to {escape(r.end.isoformat())}</p>",
    ]
    for s in r.sections:
        out.append(f"<h2>{escape(s.title)}</h2>")
        if s.note:
            out.append(f'<p class="note">{escape(s.note)}</p>')
        if not s.rows:
            out.append("<p>None in this window.</p>")
            continue
        out.append("<table><thead><tr>")
        out.append("".join(f"<th>{escape(h)}</th>" for h in s.headers))
        out.append("</tr></thead><tbody>")
        for row in s.rows:
            out.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
        out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --- command line --------------------------------------------------------------------------


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", default="7d", help="window length: 7d, 24h, 90m, 2w (default 7d)")
    p.add_argument(
        "--events", type=Path, default=None, help="JSON lines of events (default: bundled sample)"
    )
    p.add_argument("--policy", type=Path, help="policy TOML (default: the shipped policy)")
    p.add_argument("--now", help="end of the window, RFC 3339 (default: the newest event)")
    p.add_argument("--format", choices=["markdown", "html"], default="markdown")
    p.add_argument("--out", type=Path, help="write here instead of stdout")


def run_report(args: argparse.Namespace) -> int:
    since = parse_since(args.since)
    now = None
    if args.now:
        try:
            now = datetime.fromisoformat(args.now.replace("Z", "+00:00"))
        except ValueError:
            raise HandoffError(f"--now {args.now!r}: expected an RFC 3339 timestamp") from None
        if now.tzinfo is None:
            raise HandoffError(f"--now {args.now!r}: the timestamp needs a zone (Z or +hh:mm)")
    policy = load_policy(args.policy) if args.policy else default_policy()
    rec = load_events(args.events or DEFAULT_EVENTS)
    report = build_report(rec, policy, since, now)
    text = to_html(report) if args.format == "html" else to_markdown(report)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
        print(f"report written to {args.out} ({report.figures['conversations']} conversations)")
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    if rec.invalid:
        print(f"note: {len(rec.invalid)} invalid lines skipped", file=sys.stderr)
    return 0
