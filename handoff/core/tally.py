"""Tally the outputs of a run: what the demo prints and what tests check invariants on.

Pure: takes the decoded records of the output topics, returns counts. A redelivered command
(same ``command_id``) counts once; two *different* create commands for one conversation
would be a bug and are counted as ``duplicate_ticket_creates``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Tally:
    conversations_with_output: int = 0
    by_disposition: Counter[str] = field(default_factory=Counter)
    escalations: int = 0
    escalations_by_reason: Counter[str] = field(default_factory=Counter)
    escalations_by_intent: Counter[str] = field(default_factory=Counter)
    ticket_commands: int = 0
    ticket_updates: int = 0
    crm_commands: int = 0
    redelivered_commands: int = 0
    duplicate_ticket_creates: int = 0
    dead_letters: int = 0
    dead_letter_errors: list[str] = field(default_factory=list)
    results_by_status: Counter[str] = field(default_factory=Counter)


def tally(
    tickets: list[dict[str, Any]],
    notes: list[dict[str, Any]],
    dead_letters: list[dict[str, Any]],
    results: list[dict[str, Any]] | None = None,
) -> Tally:
    t = Tally()
    seen: set[str] = set()
    creates: dict[str, set[str]] = {}
    last_disposition: dict[str, str] = {}
    for cmd in tickets:
        if cmd["command_id"] in seen:
            t.redelivered_commands += 1
            continue
        seen.add(cmd["command_id"])
        t.ticket_commands += 1
        cid = cmd["conversation_id"]
        last_disposition[cid] = cmd["disposition"]
        if cmd.get("action", "create") == "create":
            creates.setdefault(cid, set()).add(cmd["idempotency_key"])
            t.escalations += 1
            t.escalations_by_intent[cmd.get("intent") or "unknown"] += 1
            for reason in cmd.get("escalation_reasons", []):
                t.escalations_by_reason[reason] += 1
        else:
            t.ticket_updates += 1
    for cmd in notes:
        if cmd["command_id"] in seen:
            t.redelivered_commands += 1
            continue
        seen.add(cmd["command_id"])
        t.crm_commands += 1
        last_disposition[cmd["conversation_id"]] = cmd["disposition"]
    t.duplicate_ticket_creates = sum(len(keys) - 1 for keys in creates.values())
    t.conversations_with_output = len(last_disposition)
    t.by_disposition.update(last_disposition.values())
    t.dead_letters = len(dead_letters)
    t.dead_letter_errors = [d["error"] for d in dead_letters]
    for r in results or []:
        t.results_by_status[f"{r['kind']}:{r['status']}"] += 1
    return t


def render(t: Tally) -> str:
    def line(title: str, counter: Counter[str]) -> str:
        body = ", ".join(f"{k}={v}" for k, v in sorted(counter.items())) or "none"
        return f"{title:<26}{body}"

    rows = [
        f"{'conversations (output)':<26}{t.conversations_with_output}",
        line("by disposition", t.by_disposition),
        f"{'escalations':<26}{t.escalations}",
        line("escalations by reason", t.escalations_by_reason),
        line("escalations by intent", t.escalations_by_intent),
        f"{'ticket commands':<26}{t.ticket_commands} ({t.ticket_updates} updates)",
        f"{'crm note commands':<26}{t.crm_commands}",
        f"{'redelivered commands':<26}{t.redelivered_commands}",
        f"{'duplicate ticket creates':<26}{t.duplicate_ticket_creates}",
        line("connector results", t.results_by_status),
        f"{'dead letters':<26}{t.dead_letters}",
    ]
    rows += [f"  - {e}" for e in t.dead_letter_errors[:10]]
    return "\n".join(rows)
