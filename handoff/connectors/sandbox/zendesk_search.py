"""The part of Zendesk's search query language the sandbox understands.

Supported terms (space-separated, AND-ed, a leading ``-`` negates one):
``type:ticket``, ``status:open`` / ``status<solved`` / ``status>=pending``,
``priority:high``, ``ticket_type:incident``, ``tags:x`` (or ``tag:x``),
``requester:<email>``, ``external_id:x``, ``custom_field_<id>:<value>``,
``created>2026-01-01`` / ``created<2026-01-01T10:00:00Z`` / ``created>4hours``
(also ``updated``), and bare words or ``"quoted phrases"`` matched against subject
and description. Values may be quoted; ``*`` at the end of a value is a prefix match.
An unknown ``key:value`` term is treated as text, as Zendesk does.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

STATUS_ORDER = {"new": 0, "open": 1, "pending": 2, "hold": 3, "solved": 4, "closed": 5}
PRIORITY_ORDER = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
_TERM = re.compile(r"^(-?)([A-Za-z_][\w.]*)(<=|>=|:|<|>)(.*)$")
_RELATIVE = re.compile(r"^(\d+)(minute|hour|day|week|month|year)s?$")
_UNIT_S = {
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 30 * 86400,
    "year": 365 * 86400,
}

TicketView = dict[str, Any]  # the ticket doc plus "requester_email" and "created_ts"
Predicate = Callable[[TicketView], bool]


class QueryError(ValueError):
    """A query the sandbox cannot read (unbalanced quotes, a bad date)."""


def compile_query(query: str, now: float) -> tuple[bool, list[Predicate]]:
    """Return (asks_for_tickets, predicates); every predicate must hold for a match."""
    try:
        tokens = shlex.split(query)
    except ValueError as exc:
        raise QueryError(f"cannot parse the query: {exc}") from exc
    wants_tickets = True
    predicates: list[Predicate] = []
    for token in tokens:
        m = _TERM.match(token)
        if not m:
            predicates.append(_text(token))
            continue
        negate, key, op, value = m.group(1), m.group(2).lower(), m.group(3), m.group(4)
        if key == "type":
            wants_tickets = wants_tickets and (value.lower() == "ticket") != bool(negate)
            continue
        pred = _term(key, op, value, now) or _text(token.lstrip("-"))
        predicates.append(_negated(pred) if negate else pred)
    return wants_tickets, predicates


def _negated(pred: Predicate) -> Predicate:
    return lambda t: not pred(t)


def _eq(value: str) -> Callable[[Any], bool]:
    want = value.lower()
    if want.endswith("*"):
        return lambda got: got is not None and str(got).lower().startswith(want[:-1])
    return lambda got: got is not None and str(got).lower() == want


def _ordered(order: dict[str, int], op: str, value: str) -> Callable[[Any], bool]:
    want = order.get(value.lower())
    if want is None:
        return lambda got: False
    w = want
    ops: dict[str, Callable[[int, int], bool]] = {
        ":": lambda a, b: a == b,
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
    }
    cmp = ops[op]
    return lambda got: got in order and cmp(order[got], w)


def _term(key: str, op: str, value: str, now: float) -> Predicate | None:
    if key == "status":
        f = _ordered(STATUS_ORDER, op, value)
        return lambda t: f(t.get("status"))
    if key == "priority":
        g = _ordered(PRIORITY_ORDER, op, value)
        return lambda t: g(t.get("priority"))
    if op != ":" and key not in ("created", "updated"):
        return None
    if key in ("ticket_type", "tickettype"):
        h = _eq(value)
        return lambda t: h(t.get("type"))
    if key in ("tags", "tag"):
        h = _eq(value)
        return lambda t: any(h(tag) for tag in t.get("tags", []))
    if key == "requester":
        h = _eq(value)
        return lambda t: h(t.get("requester_email")) or h(t.get("requester_id"))
    if key == "external_id":
        h = _eq(value)
        return lambda t: h(t.get("external_id"))
    if key.startswith("custom_field_") and key[13:].isdigit():
        field_id, h = int(key[13:]), _eq(value)
        return lambda t: any(
            f.get("id") == field_id and h(f.get("value")) for f in t.get("custom_fields", [])
        )
    if key in ("created", "updated"):
        when = _when(value, now)
        attr = "created_ts" if key == "created" else "updated_ts"
        if op == ":":
            # A date on its own means that whole day.
            return lambda t: when <= t[attr] < when + 86400
        cmp = {
            "<": lambda a: a < when,
            ">": lambda a: a > when,
            "<=": lambda a: a <= when,
            ">=": lambda a: a >= when,
        }[op]
        return lambda t: cmp(t[attr])
    if key in ("subject", "description"):
        h2 = value.lower()
        return lambda t: h2 in str(t.get(key) or "").lower()
    return None


def _text(word: str) -> Predicate:
    needle = word.lower().rstrip("*")
    return lambda t: needle in f"{t.get('subject') or ''} {t.get('description') or ''}".lower()


def _when(value: str, now: float) -> float:
    rel = _RELATIVE.match(value.lower())
    if rel:
        return now - int(rel.group(1)) * _UNIT_S[rel.group(2)]
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise QueryError(f"cannot read the date {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
