"""Fixed Intercom workspace data: ticket types, their states and attributes, and search."""

from __future__ import annotations

from typing import Any

WORKSPACE_ID = "sandbox1"
CREATED = 1_700_000_000

STATES = [
    {
        "id": "1",
        "category": "submitted",
        "internal_label": "Submitted",
        "external_label": "Submitted",
    },
    {
        "id": "2",
        "category": "in_progress",
        "internal_label": "In progress",
        "external_label": "In progress",
    },
    {
        "id": "3",
        "category": "waiting_on_customer",
        "internal_label": "Waiting on customer",
        "external_label": "Awaiting your reply",
    },
    {"id": "4", "category": "resolved", "internal_label": "Resolved", "external_label": "Resolved"},
]
STATE_BY_ID = {s["id"]: {"type": "ticket_state", **s} for s in STATES}

CUSTOMER_ATTRIBUTES = (
    "_default_title_",
    "_default_description_",
    "bot_conversation_id",
    "intent",
    "product_area",
    "plan_tier",
    "customer_tier",
    "order_id",
    "invoice_id",
    "app_version",
    "escalation_reasons",
)


def _attribute(name: str, order: int) -> dict[str, Any]:
    return {
        "type": "ticket_type_attribute",
        "id": str(100 + order),
        "workspace_id": WORKSPACE_ID,
        "name": name,
        "description": name,
        "data_type": "string",
        "input_options": {},
        "order": order,
        "required_to_create": False,
        "required_to_create_for_contacts": False,
        "visible_on_create": True,
        "visible_to_contacts": name.startswith("_default_"),
        "default": name.startswith("_default_"),
        "ticket_type_id": "1",
        "archived": False,
        "created_at": CREATED,
        "updated_at": CREATED,
    }


def _ticket_type(type_id: str, name: str, category: str, attrs: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "ticket_type",
        "id": type_id,
        "category": category,
        "name": name,
        "description": f"{name} (sandbox)",
        "icon": "🎟️",
        "workspace_id": WORKSPACE_ID,
        "ticket_type_attributes": {
            "type": "list",
            "data": [_attribute(a, i) for i, a in enumerate(attrs)],
        },
        "ticket_states": {"type": "list", "data": list(STATE_BY_ID.values())},
        "archived": False,
        "created_at": CREATED,
        "updated_at": CREATED,
    }


TICKET_TYPES = {
    t["id"]: t
    for t in (
        _ticket_type("1", "Customer escalation", "Customer", CUSTOMER_ATTRIBUTES),
        _ticket_type("2", "Bug report", "Tracker", CUSTOMER_ATTRIBUTES[:2]),
        _ticket_type("3", "Back-office task", "Back-office", CUSTOMER_ATTRIBUTES[:2]),
    )
}

MAX_FILTERS_PER_GROUP = 15
MAX_NESTING = 2


class SearchError(ValueError):
    pass


def check_query(query: Any, depth: int = 0) -> None:
    if not isinstance(query, dict):
        raise SearchError("query must be an object")
    if "field" in query:
        return
    if query.get("operator") not in ("AND", "OR") or not isinstance(query.get("value"), list):
        raise SearchError("a query group needs operator AND or OR and a list value")
    if depth >= MAX_NESTING:
        raise SearchError(f"at most {MAX_NESTING} nested filter groups are allowed")
    if len(query["value"]) > MAX_FILTERS_PER_GROUP:
        raise SearchError(f"at most {MAX_FILTERS_PER_GROUP} filters per AND or OR group")
    for sub in query["value"]:
        check_query(sub, depth + 1)


def evaluate(query: dict[str, Any], fields: dict[str, Any]) -> bool:
    if "field" not in query:
        results = (evaluate(q, fields) for q in query["value"])
        return all(results) if query["operator"] == "AND" else any(results)
    got = fields.get(query["field"])
    return _compare(got, query.get("operator", "="), query.get("value"))


def _norm(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return float(value)
    text = str(value).lower()
    try:
        return float(text)
    except ValueError:
        return text


def _compare(got: Any, op: str, want: Any) -> bool:
    values = got if isinstance(got, list) else [got]
    values = [_norm(v) for v in values if v is not None]
    if op in ("IN", "NIN"):
        wanted = {_norm(w) for w in (want if isinstance(want, list) else [want])}
        return any(v in wanted for v in values) == (op == "IN")
    w = _norm(want)
    if op == "=":
        return w in values
    if op == "!=":
        return w not in values
    text_ops = {
        "~": lambda v: str(w) in str(v),
        "!~": lambda v: str(w) not in str(v),
        "^": lambda v: str(v).startswith(str(w)),
        "$": lambda v: str(v).endswith(str(w)),
    }
    if op in text_ops:
        return any(text_ops[op](v) for v in values)
    num_ops = {
        "<": lambda v: v < w,
        "<=": lambda v: v <= w,
        ">": lambda v: v > w,
        ">=": lambda v: v >= w,
    }
    return any(type(v) is type(w) and num_ops[op](v) for v in values) if op in num_ops else False
