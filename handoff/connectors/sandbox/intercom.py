"""Fake Intercom REST API 2.16: conversations (convert, notes, search) and tickets.

Mounted under ``/intercom``. Every request needs a bearer token and an
``Intercom-Version`` header, and, when the spec is loaded, must fit the OpenAPI
description (checked before the handler runs). Errors use Intercom's ``error.list``.
Conversations must exist (``POST /_sandbox/intercom/conversations``) unless the
sandbox runs with ``intercom_autocreate``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from handoff.connectors.sandbox.intercom_data import (
    STATE_BY_ID,
    TICKET_TYPES,
    SearchError,
    check_query,
    evaluate,
)
from handoff.connectors.sandbox.state import (
    SandboxState,
    bearer_token,
    json_response,
    new_request_id,
    read_json,
    state_of,
    token_ok,
)
from handoff.connectors.sandbox.store import Row

PREFIX = "/intercom"
MAX_PER_PAGE = 150


def error(status: int, code: str, message: str) -> web.Response:
    body = {
        "type": "error.list",
        "request_id": new_request_id(),
        "errors": [{"code": code, "message": message}],
    }
    return json_response(body, status=status)


async def check_request(request: web.Request) -> web.Response | None:
    """Auth, the version header, then the OpenAPI description; None when all pass."""
    state = state_of(request)
    if not token_ok(state.settings, bearer_token(request)):
        return error(401, "unauthorized", "Access Token Invalid")
    if not request.headers.get("Intercom-Version"):
        return error(400, "intercom_version_missing", "The Intercom-Version header is required")
    validator = state.intercom_validator
    if validator is None:
        return None
    body = await request.read()
    reason = validator.check(request, request.path[len(PREFIX) :], body)
    state.stats.intercom_validated += 1
    if reason is None:
        return None
    state.stats.intercom_rejected += 1
    code = "parameter_not_found" if "required" in reason else "parameter_invalid"
    return error(400, code, reason)


def contact_ref(ref: dict[str, Any]) -> dict[str, Any]:
    """A contact given as {id}, {external_id} or {email}; unknown ones exist from now on."""
    ident = ref.get("id") or ref.get("external_id") or ref.get("email") or ""
    contact_id = ref.get("id") or hashlib.sha1(str(ident).encode()).hexdigest()[:24]
    out = {"type": "contact", "id": str(contact_id)}
    if ref.get("external_id"):
        out["external_id"] = ref["external_id"]
    return out


def _now(state: SandboxState) -> int:
    return int(state.clock())


def new_conversation(state: SandboxState, conv_id: int | None, spec: dict[str, Any]) -> Row:
    email = spec.get("email") or "customer@example.com"
    doc: dict[str, Any] = {
        "title": spec.get("title"),
        "body": spec.get("body") or "Hi, I need help.",
        "contact": {**contact_ref({"email": email}), "email": email},
        "parts": [],
        "ticket_id": None,
        "updated_ts": state.clock(),
    }
    new_id = state.store.insert("ic_conversations", doc, created_ts=state.clock(), id=conv_id)
    row = state.store.get("ic_conversations", new_id)
    assert row is not None
    return row


def _conversation(request: web.Request, raw_id: str | None) -> Row | None:
    state = state_of(request)
    if raw_id is None or not raw_id.isdigit():
        return None
    row = state.store.get("ic_conversations", int(raw_id))
    if row is None and state.settings.intercom_autocreate:
        row = new_conversation(state, int(raw_id), {})
    return row


def render_conversation(state: SandboxState, row: Row) -> dict[str, Any]:
    d = row.doc
    ticket = state.store.get("ic_tickets", d["ticket_id"]) if d["ticket_id"] else None
    linked = [{"type": "ticket", "id": str(ticket.id), "category": "Customer"}] if ticket else []
    return {
        "type": "conversation",
        "id": str(row.id),
        "title": d["title"],
        "created_at": int(row.created_ts),
        "updated_at": int(d["updated_ts"]),
        "open": True,
        "state": "open",
        "read": False,
        "priority": "not_priority",
        "admin_assignee_id": None,
        "team_assignee_id": None,
        "tags": {"type": "tag.list", "tags": []},
        "source": {
            "type": "conversation",
            "id": str(row.id),
            "delivered_as": "customer_initiated",
            "body": d["body"],
            "author": {"type": "user", "id": d["contact"]["id"], "email": d["contact"]["email"]},
        },
        "contacts": {"type": "contact.list", "contacts": [contact_ref(d["contact"])]},
        "conversation_parts": {
            "type": "conversation_part.list",
            "conversation_parts": d["parts"],
            "total_count": len(d["parts"]),
        },
        "linked_objects": {
            "type": "list",
            "total_count": len(linked),
            "has_more": False,
            "data": linked,
        },
    }


def _part(
    state: SandboxState, owner_id: int, n: int, body: dict[str, Any], kind: str
) -> dict[str, Any]:
    author_type = body.get("type", "admin")
    author_id = body.get("admin_id") or body.get("intercom_user_id") or body.get("email") or ""
    return {
        "type": kind,
        "id": f"{owner_id}{n:04d}",
        "part_type": body.get("message_type", "comment"),
        "body": body.get("body"),
        "created_at": _now(state),
        "updated_at": _now(state),
        "author": {"type": "admin" if author_type == "admin" else "user", "id": str(author_id)},
        "attachments": [],
        "redacted": False,
    }


def render_ticket(state: SandboxState, row: Row) -> dict[str, Any]:
    d = row.doc
    linked = [{"type": "conversation", "id": d["conversation_id"], "category": None}]
    linked = linked if d["conversation_id"] else []
    ticket_type = TICKET_TYPES[d["ticket_type_id"]]
    return {
        "type": "ticket",
        "id": str(row.id),
        "ticket_id": str(d["ticket_number"]),
        "category": ticket_type["category"],
        "ticket_attributes": d["attributes"],
        "ticket_state": STATE_BY_ID[d["state_id"]],
        "ticket_type": ticket_type,
        "contacts": {"type": "contact.list", "contacts": d["contacts"]},
        "admin_assignee_id": d.get("admin_assignee_id") or 0,
        "team_assignee_id": 0,
        "created_at": int(row.created_ts),
        "updated_at": int(d["updated_ts"]),
        "open": d["open"],
        "linked_objects": {
            "type": "list",
            "total_count": len(linked),
            "has_more": False,
            "data": linked,
        },
        "ticket_parts": {
            "type": "ticket_part.list",
            "ticket_parts": d["parts"],
            "total_count": len(d["parts"]),
        },
        "is_shared": d.get("is_shared", False),
        "tags": {"type": "tag.list", "tags": d["tags"]},
    }


def _type_problem(type_id: Any, attributes: dict[str, Any], state_id: Any) -> str | None:
    ticket_type = TICKET_TYPES.get(str(type_id))
    if ticket_type is None:
        return f"Ticket type {type_id} not found"
    known = {a["name"] for a in ticket_type["ticket_type_attributes"]["data"]}
    unknown = sorted(set(attributes) - known)
    if unknown:
        return f"Ticket attributes not defined on the ticket type: {', '.join(unknown)}"
    if state_id is not None and str(state_id) not in STATE_BY_ID:
        return f"Ticket state {state_id} not found"
    return None


def _new_ticket(
    state: SandboxState,
    type_id: str,
    attributes: dict[str, Any],
    contacts: list[dict[str, Any]],
    conversation_id: str | None,
    state_id: str | None,
) -> Row:
    now = state.clock()
    doc = {
        "ticket_type_id": type_id,
        "attributes": attributes,
        "state_id": state_id or "1",
        "open": True,
        "contacts": contacts,
        "conversation_id": conversation_id,
        "parts": [],
        "tags": [],
        "updated_ts": now,
        "ticket_number": state.store.count("ic_tickets") + 1,
    }
    ticket_id = state.store.insert("ic_tickets", doc, created_ts=now, key=conversation_id)
    row = state.store.get("ic_tickets", ticket_id)
    assert row is not None
    return row


async def _body(request: web.Request) -> dict[str, Any]:
    body, _ = await read_json(request)
    return body if isinstance(body, dict) else {}


def _conv_not_found() -> web.Response:
    return error(404, "not_found", "Resource Not Found")


async def convert(request: web.Request) -> web.Response:
    state = state_of(request)
    conv = _conversation(request, request.match_info["conversation_id"])
    if conv is None:
        return _conv_not_found()
    body = await _body(request)
    attributes = body.get("attributes") or {}
    problem = _type_problem(body.get("ticket_type_id"), attributes, body.get("ticket_state_id"))
    if problem:
        return error(400, "parameter_invalid", problem)
    if TICKET_TYPES[str(body["ticket_type_id"])]["category"] != "Customer":
        return error(400, "parameter_invalid", "Ticket type is not a customer ticket type")
    if conv.doc["ticket_id"] is not None:
        return error(
            400, "parameter_invalid", "Conversation has already been converted to a ticket"
        )
    contacts = [contact_ref(conv.doc["contact"])]
    ticket = _new_ticket(
        state,
        str(body["ticket_type_id"]),
        attributes,
        contacts,
        str(conv.id),
        body.get("ticket_state_id"),
    )
    state.store.update(
        "ic_conversations",
        conv.id,
        {**conv.doc, "ticket_id": ticket.id, "updated_ts": state.clock()},
    )
    return json_response(render_ticket(state, ticket))


async def reply_conversation(request: web.Request) -> web.Response:
    state = state_of(request)
    conv = _conversation(request, request.match_info["conversation_id"])
    if conv is None:
        return _conv_not_found()
    body = await _body(request)
    doc = dict(conv.doc)
    doc["parts"] = [
        *doc["parts"],
        _part(state, conv.id, len(doc["parts"]) + 1, body, "conversation_part"),
    ]
    doc["updated_ts"] = state.clock()
    state.store.update("ic_conversations", conv.id, doc)
    fresh = state.store.get("ic_conversations", conv.id)
    assert fresh is not None
    return json_response(render_conversation(state, fresh))


async def get_conversation(request: web.Request) -> web.Response:
    conv = _conversation(request, request.match_info["conversation_id"])
    if conv is None:
        return _conv_not_found()
    return json_response(render_conversation(state_of(request), conv))


async def list_ticket_types(request: web.Request) -> web.Response:
    return json_response({"type": "list", "data": list(TICKET_TYPES.values())})


def _ticket_fields(state: SandboxState, row: Row) -> dict[str, Any]:
    d = row.doc
    return {
        **d["attributes"],
        "id": str(row.id),
        "title": d["attributes"].get("_default_title_"),
        "description": d["attributes"].get("_default_description_"),
        "category": TICKET_TYPES[d["ticket_type_id"]]["category"],
        "ticket_type_id": d["ticket_type_id"],
        "contact_ids": [c["id"] for c in d["contacts"]],
        "state": STATE_BY_ID[d["state_id"]]["category"],
        "open": d["open"],
        "created_at": int(row.created_ts),
        "updated_at": int(d["updated_ts"]),
    }


def _conversation_fields(state: SandboxState, row: Row) -> dict[str, Any]:
    d = row.doc
    return {
        "id": str(row.id),
        "title": d["title"],
        "source.body": d["body"],
        "source.author.email": d["contact"]["email"],
        "contact_ids": [d["contact"]["id"]],
        "state": "open",
        "open": True,
        "created_at": int(row.created_ts),
        "updated_at": int(d["updated_ts"]),
    }


async def _search(request: web.Request, table: str, kind: str) -> web.Response:
    state = state_of(request)
    body = await _body(request)
    try:
        check_query(body.get("query"))
    except SearchError as exc:
        return error(400, "parameter_invalid", str(exc))
    fields_of = _ticket_fields if table == "ic_tickets" else _conversation_fields
    cutoff = state.search_cutoff()
    hits = [
        r
        for r in state.store.rows(table)
        if r.created_ts <= cutoff and evaluate(body["query"], fields_of(state, r))
    ]
    paging = body.get("pagination") or {}
    per_page = min(int(paging.get("per_page") or 20), MAX_PER_PAGE)
    start = int(paging.get("starting_after") or 0)
    page = hits[start : start + per_page]
    render = render_ticket if table == "ic_tickets" else render_conversation
    pages: dict[str, Any] = {
        "type": "pages",
        "page": start // per_page + 1,
        "per_page": per_page,
        "total_pages": max(1, -(-len(hits) // per_page)),
    }
    if start + per_page < len(hits):
        pages["next"] = {"per_page": per_page, "starting_after": str(start + per_page)}
    return json_response(
        {
            "type": f"{kind}.list",
            f"{kind}s": [render(state, r) for r in page],
            "total_count": len(hits),
            "pages": pages,
        }
    )


async def search_conversations(request: web.Request) -> web.Response:
    return await _search(request, "ic_conversations", "conversation")


async def search_tickets(request: web.Request) -> web.Response:
    return await _search(request, "ic_tickets", "ticket")


async def create_ticket(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await _body(request)
    attributes = body.get("ticket_attributes") or {}
    problem = _type_problem(body.get("ticket_type_id"), attributes, None)
    if problem:
        return error(400, "parameter_invalid", problem)
    contacts = body.get("contacts") or []
    if len(contacts) != 1 or not isinstance(contacts[0], dict):
        return error(400, "parameter_invalid", "Exactly one contact is required")
    link = body.get("conversation_to_link_id")
    if link is not None and _conversation(request, str(link)) is None:
        return error(404, "not_found", f"Conversation {link} not found")
    ticket = _new_ticket(
        state, str(body["ticket_type_id"]), attributes, [contact_ref(contacts[0])], link, None
    )
    return json_response(render_ticket(state, ticket))


def _ticket(request: web.Request) -> Row | None:
    raw = request.match_info["ticket_id"]
    return state_of(request).store.get("ic_tickets", int(raw)) if raw.isdigit() else None


def _ticket_not_found() -> web.Response:
    return error(404, "ticket_not_found", "Ticket not found")


async def get_ticket(request: web.Request) -> web.Response:
    row = _ticket(request)
    return json_response(render_ticket(state_of(request), row)) if row else _ticket_not_found()


async def update_ticket(request: web.Request) -> web.Response:
    state = state_of(request)
    row = _ticket(request)
    if row is None:
        return _ticket_not_found()
    body = await _body(request)
    doc = dict(row.doc)
    attributes = {**doc["attributes"], **(body.get("ticket_attributes") or {})}
    problem = _type_problem(doc["ticket_type_id"], attributes, body.get("ticket_state_id"))
    if problem:
        return error(400, "parameter_invalid", problem)
    doc["attributes"] = attributes
    if body.get("ticket_state_id") is not None:
        doc["state_id"] = str(body["ticket_state_id"])
    for name in ("open", "is_shared"):
        if name in body:
            doc[name] = body[name]
    if body.get("assignee_id") is not None:
        doc["admin_assignee_id"] = int(body["assignee_id"])
    doc["updated_ts"] = state.clock()
    state.store.update("ic_tickets", row.id, doc)
    fresh = state.store.get("ic_tickets", row.id)
    assert fresh is not None
    return json_response(render_ticket(state, fresh))


async def reply_ticket(request: web.Request) -> web.Response:
    state = state_of(request)
    row = _ticket(request)
    if row is None:
        return _ticket_not_found()
    body = await _body(request)
    doc = dict(row.doc)
    part = _part(state, row.id, len(doc["parts"]) + 1, body, "ticket_part")
    doc["parts"] = [*doc["parts"], part]
    doc["updated_ts"] = state.clock()
    state.store.update("ic_tickets", row.id, doc)
    return json_response(part)


async def tag_ticket(request: web.Request) -> web.Response:
    """Any tag id is accepted; its name is the id (the sandbox has no tag catalogue)."""
    state = state_of(request)
    row = _ticket(request)
    if row is None:
        return _ticket_not_found()
    body = await _body(request)
    tag = {
        "type": "tag",
        "id": str(body.get("id")),
        "name": str(body.get("id")),
        "applied_at": _now(state),
        "applied_by": {"type": "admin", "id": str(body.get("admin_id"))},
    }
    doc = dict(row.doc)
    if all(t["id"] != tag["id"] for t in doc["tags"]):
        doc["tags"] = [*doc["tags"], tag]
        state.store.update("ic_tickets", row.id, doc)
    return json_response(tag)


def add_routes(app: web.Application) -> None:
    r = app.router
    conv = PREFIX + "/conversations/{conversation_id}"
    tick = PREFIX + "/tickets/{ticket_id}"
    r.add_post(conv + "/convert", convert)
    r.add_post(conv + "/reply", reply_conversation)
    r.add_post(PREFIX + "/conversations/search", search_conversations)
    r.add_get(conv, get_conversation)
    r.add_get(PREFIX + "/ticket_types", list_ticket_types)
    r.add_post(PREFIX + "/tickets/search", search_tickets)
    r.add_post(PREFIX + "/tickets", create_ticket)
    r.add_get(tick, get_ticket)
    r.add_put(tick, update_ticket)
    r.add_post(tick + "/reply", reply_ticket)
    r.add_post(tick + "/tags", tag_ticket)
