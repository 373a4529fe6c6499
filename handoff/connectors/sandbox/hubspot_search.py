"""HubSpot CRM search (``PublicObjectSearchRequest``) over property maps.

``filterGroups`` are OR-ed, the filters inside a group AND-ed. Operators: ``EQ``
``NEQ`` ``LT`` ``LTE`` ``GT`` ``GTE`` ``BETWEEN`` ``IN`` ``NOT_IN`` ``HAS_PROPERTY``
``NOT_HAS_PROPERTY`` ``CONTAINS_TOKEN`` ``NOT_CONTAINS_TOKEN``. String comparisons are
case-insensitive, as HubSpot's are. ``CONTAINS_TOKEN`` matches a whole token of the
value (tokens split on whitespace and again on punctuation); ``*`` is a wildcard.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

MAX_FILTER_GROUPS = 6
MAX_FILTERS_PER_GROUP = 6
MAX_LIMIT = 200
OPERATORS = frozenset(
    {
        *("EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN"),
        *("HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"),
    }
)


class SearchError(ValueError):
    """A search body HubSpot would refuse with 400."""


def check_request(body: Any) -> None:
    if not isinstance(body, dict):
        raise SearchError("the search body must be a JSON object")
    groups = body.get("filterGroups", [])
    if not isinstance(groups, list) or len(groups) > MAX_FILTER_GROUPS:
        raise SearchError(f"filterGroups must be a list of at most {MAX_FILTER_GROUPS} groups")
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list) or len(filters) > MAX_FILTERS_PER_GROUP:
            raise SearchError(f"each filter group needs at most {MAX_FILTERS_PER_GROUP} filters")
        for f in filters:
            if not isinstance(f, dict) or not isinstance(f.get("propertyName"), str):
                raise SearchError("each filter needs a propertyName")
            if f.get("operator") not in OPERATORS:
                raise SearchError(f"unknown operator {f.get('operator')!r}")
    limit = body.get("limit", 10)
    if not isinstance(limit, int) or not 0 < limit <= MAX_LIMIT:
        raise SearchError(f"limit must be between 1 and {MAX_LIMIT}")


def matches(props: dict[str, Any], body: dict[str, Any], text_props: tuple[str, ...]) -> bool:
    query = body.get("query")
    if query and not any(str(query).lower() in str(props.get(p) or "").lower() for p in text_props):
        return False
    groups = body.get("filterGroups") or []
    if not groups:
        return True
    return any(all(_filter(props, f) for f in g["filters"]) for g in groups)


def _tokens(text: str) -> set[str]:
    words = text.lower().split()
    parts = {p for w in words for p in re.split(r"[^\w]+", w) if p}
    return set(words) | parts


def _num(value: Any) -> float | str:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value).lower()


def _filter(props: dict[str, Any], f: dict[str, Any]) -> bool:
    op = f["operator"]
    raw = props.get(f["propertyName"])
    has = raw not in (None, "")
    if op == "HAS_PROPERTY":
        return has
    if op == "NOT_HAS_PROPERTY":
        return not has
    got = str(raw).lower() if has else ""
    value = str(f.get("value", "")).lower()
    if op in ("EQ", "NEQ"):
        return (has and got == value) == (op == "EQ")
    if op in ("IN", "NOT_IN"):
        values = {str(v).lower() for v in f.get("values", [])}
        return (has and got in values) == (op == "IN")
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        tokens = _tokens(got)
        wanted = value.split() or [""]
        found = has and all(
            any(fnmatch.fnmatchcase(t, w) for t in tokens) if "*" in w else w in tokens
            for w in wanted
        )
        return found == (op == "CONTAINS_TOKEN")
    if not has:
        return False
    left, right = _num(raw), _num(f.get("value"))
    if op == "BETWEEN":
        return _cmp(right, left, "LTE") and _cmp(left, _num(f.get("highValue")), "LTE")
    return _cmp(left, right, op)


def _cmp(left: float | str, right: float | str, op: str) -> bool:
    """Numbers compare as numbers, strings as strings, a mix never matches."""
    if isinstance(left, float) and isinstance(right, float):
        a: tuple[float, str] = (left, "")
        b: tuple[float, str] = (right, "")
    elif isinstance(left, str) and isinstance(right, str):
        a, b = (0.0, left), (0.0, right)
    else:
        return False
    if op == "LT":
        return a < b
    if op == "LTE":
        return a <= b
    if op == "GT":
        return a > b
    return a >= b


def sort_and_page(
    items: list[dict[str, Any]], body: dict[str, Any]
) -> tuple[list[dict[str, Any]], str | None]:
    """Sort by ``sorts`` (default: id ascending), slice by ``after`` and ``limit``."""
    sorts = body.get("sorts") or []
    ordered = sorted(items, key=lambda p: int(p["hs_object_id"]))
    for s in reversed(sorts):
        name = s.get("propertyName") if isinstance(s, dict) else str(s).lstrip("-")
        desc = s.get("direction") == "DESCENDING" if isinstance(s, dict) else str(s).startswith("-")
        ordered.sort(key=_sort_key(str(name)), reverse=desc)
    start = int(body.get("after") or 0)
    limit = int(body.get("limit", 10))
    page = ordered[start : start + limit]
    after = str(start + limit) if start + limit < len(ordered) else None
    return page, after


def _sort_key(name: str) -> Callable[[dict[str, Any]], tuple[bool, int, float, str]]:
    def key(props: dict[str, Any]) -> tuple[bool, int, float, str]:
        value = props.get(name)
        n = _num(value)
        return (value is None, *((0, n, "") if isinstance(n, float) else (1, 0.0, n)))

    return key
