"""Arguments and output of ``handoff simulate`` (``handoff.cli`` mounts it).

Output formats: ``table`` (for people), ``json`` (everything, one document), ``csv`` (the
one table the mode is about: per-intent rows, or the changes with ``--against``, or the
sweep points with ``--sweep``). Invalid lines go to the table and the JSON, and to stderr
with CSV so the CSV stays one table.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Any

import orjson

from handoff.core.policy import Policy, default_policy, load_policy
from handoff.simulate import (
    Change,
    IntentRow,
    InvalidLine,
    Outcome,
    compare,
    load_events,
    load_labels,
    simulate,
    summarize,
)
from handoff.sweep import SweepPoint, parse_spec, plot, run_sweep

MAX_SHOWN_INVALID = 20


def add_simulate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="JSON lines of contract events, any order")
    p.add_argument("--policy", type=Path, help="policy TOML (default: the shipped policy)")
    p.add_argument("--labels", type=Path, help="expected outcomes: CSV or JSON lines")
    p.add_argument("--against", type=Path, help="a second policy: list what changes")
    p.add_argument("--sweep", metavar="NAME.threshold=LOW:HIGH:STEP", help="threshold sweep")
    p.add_argument("--plot", type=Path, help="with --sweep: write the tradeoff as an SVG")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")


def _policy(path: Path | None) -> tuple[Policy, str]:
    if path is None:
        return default_policy(), "shipped policy"
    return load_policy(path), str(path)


def _pct(n: int, d: int) -> str:
    return f"{n} ({100 * n / d:.0f}%)" if d else "0"


def _reasons(row: IntentRow) -> str:
    return ", ".join(f"{r}={n}" for r, n in row.reasons.most_common()) or "-"


def _intent_table(rows: list[IntentRow]) -> list[str]:
    head = (
        f"{'intent':<18}{'convs':>6}{'escalated':>12}{'deflected':>12}"
        f"{'labelled':>9}{'agree':>7}{'unneeded':>9}{'missed':>7}  reasons"
    )
    out = [head, "-" * len(head)]
    for r in rows:
        agree = f"{100 * r.agreement:.0f}%" if r.agreement is not None else "-"
        out.append(
            f"{r.intent:<18}{r.conversations:>6}{_pct(r.escalated, r.conversations):>12}"
            f"{_pct(r.deflected, r.conversations):>12}{r.labelled:>9}{agree:>7}"
            f"{r.unneeded:>9}{r.missed:>7}  {_reasons(r)}"
        )
    return out


def _change_dict(c: Change) -> dict[str, Any]:
    return {
        "conversation_id": c.conversation_id,
        "intent": c.intent,
        "change": c.kind,
        "expected_escalation": c.expected,
        "effect": c.effect,
        "before_escalated": c.before.escalated,
        "after_escalated": c.after.escalated,
        "before_reasons": " ".join(c.before.reasons),
        "after_reasons": " ".join(c.after.reasons),
        "before_disposition": c.before.disposition,
        "after_disposition": c.after.disposition,
    }


def _change_table(changes: list[Change], name_a: str, name_b: str) -> list[str]:
    out = [f"{len(changes)} conversations decided differently ({name_a} -> {name_b})"]
    for c in changes:
        b = ",".join(c.before.reasons) or "-"
        a = ",".join(c.after.reasons) or "-"
        tail = f"  [{c.effect} label]" if c.effect else ""
        out.append(
            f"  {c.conversation_id:<16} {c.intent:<16} {c.kind:<20} "
            f"{c.before.disposition}:{b} -> {c.after.disposition}:{a}{tail}"
        )
    fixes = sum(c.effect == "fixes" for c in changes)
    breaks = sum(c.effect == "breaks" for c in changes)
    more = sum(c.kind == "now escalates" for c in changes)
    less = sum(c.kind == "no longer escalates" for c in changes)
    out.append(
        f"  net: +{more} escalations, -{less} escalations; labelled: {fixes} fixed, {breaks} broken"
    )
    return out


def _sweep_table(points: list[SweepPoint], current: float) -> list[str]:
    head = (
        f"{'threshold':>9}{'convs':>7}{'escalated':>12}{'deflected':>12}"
        f"{'needed':>8}{'missed':>8}{'unneeded':>10}"
    )
    out = [head, "-" * len(head)]
    for p in points:
        mark = "  <- policy" if abs(p.threshold - current) < 1e-9 else ""
        out.append(
            f"{p.threshold:>9g}{p.conversations:>7}{_pct(p.escalated, p.conversations):>12}"
            f"{_pct(p.deflected, p.conversations):>12}{p.needed:>8}{p.missed:>8}"
            f"{p.unneeded:>10}{mark}"
        )
    return out


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow(
                {k: (orjson.dumps(v).decode() if isinstance(v, dict) else v) for k, v in r.items()}
            )
    return buf.getvalue()


def run_simulate(args: argparse.Namespace) -> int:
    policy, pname = _policy(args.policy)
    rec = load_events(args.file)
    labels: dict[str, bool] = {}
    bad_labels: list[InvalidLine] = []
    if args.labels is not None:
        labels, bad_labels = load_labels(args.labels)
    outcomes = simulate(rec, policy, labels)
    rows = summarize(outcomes)
    changes: list[Change] | None = None
    other_name = ""
    if args.against is not None:
        other, other_name = _policy(args.against)
        changes = compare(outcomes, simulate(rec, other, labels))
    points: list[SweepPoint] | None = None
    current = 0.0
    if args.sweep:
        spec = parse_spec(args.sweep)
        current = spec.current(policy)
        points = run_sweep(rec, policy, spec, labels)
        if args.plot is not None:
            args.plot.write_text(plot(points, spec, current), encoding="utf-8")
    dups = sum(o.duplicates for o in outcomes)
    head = (
        f"{args.file}: {rec.events} events in {len(outcomes)} conversations "
        f"({len(rec.invalid)} invalid lines, {dups} duplicate events), policy: {pname}"
    )
    if args.format == "json":
        doc: dict[str, Any] = {
            "file": str(args.file),
            "policy": pname,
            "events": rec.events,
            "conversations": len(outcomes),
            "duplicate_events": dups,
            "invalid_lines": [{"line": b.line, "error": b.error} for b in rec.invalid],
            "invalid_labels": [{"line": b.line, "error": b.error} for b in bad_labels],
            "intents": [r.as_dict() for r in rows[:-1]],
            "total": rows[-1].as_dict(),
            "conversations_detail": [_outcome_dict(o) for o in outcomes],
        }
        if changes is not None:
            doc["against"] = other_name
            doc["changes"] = [_change_dict(c) for c in changes]
        if points is not None:
            doc["sweep"] = {"spec": args.sweep, "current": current}
            doc["sweep"]["points"] = [p.as_dict() for p in points]
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if args.format == "csv":
        for b in [*rec.invalid, *bad_labels]:
            print(f"line {b.line}: {b.error}", file=sys.stderr)
        if points is not None:
            sys.stdout.write(_csv([p.as_dict() for p in points]))
        elif changes is not None:
            sys.stdout.write(_csv([_change_dict(c) for c in changes]))
        else:
            sys.stdout.write(_csv([r.as_dict() for r in rows]))
        return 0
    out = [head, ""]
    for b in rec.invalid[:MAX_SHOWN_INVALID]:
        out.append(f"  invalid line {b.line}: {b.error}")
    for b in bad_labels[:MAX_SHOWN_INVALID]:
        out.append(f"  invalid label line {b.line}: {b.error}")
    if len(rec.invalid) > MAX_SHOWN_INVALID:
        out.append(f"  ... and {len(rec.invalid) - MAX_SHOWN_INVALID} more invalid lines")
    if rec.invalid or bad_labels:
        out.append("")
    out += _intent_table(rows)
    if changes is not None:
        out += ["", *_change_table(changes, pname, other_name)]
    if points is not None:
        out += [
            "",
            f"sweep {args.sweep} (policy today: {current:g})",
            *_sweep_table(points, current),
        ]
        if args.plot is not None:
            out.append(f"plot written to {args.plot}")
    print("\n".join(out))
    return 0


def _outcome_dict(o: Outcome) -> dict[str, Any]:
    return {
        "conversation_id": o.conversation_id,
        "intent": o.intent,
        "escalated": o.escalated,
        "reasons": list(o.reasons),
        "disposition": o.disposition,
        "expected_escalation": o.expected,
        "verdict": o.verdict,
    }
