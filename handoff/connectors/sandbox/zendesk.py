"""Fake Zendesk Support API: tickets, comments, tags, external-id listing and search.

Mounted under ``/zendesk``; every path also answers with a ``.json`` suffix. Errors use
Zendesk's shapes: ``{"error": ..., "description": ..., "details": {...}}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from aiohttp import web

from handoff.connectors.sandbox.state import (
    SandboxState,
    iso,
    json_response,
    read_json,
    state_of,
    token_ok,
)
from handoff.connectors.sandbox.store import Row
from handoff.connectors.sandbox.zendesk_search import QueryError, compile_query

PREFIX = "/zendesk/api/v2"
PRIORITIES = ("urgent", "high", "normal", "low")
TYPES = ("problem", "incident", "question", "task")
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
IDEMPOTENCY_TTL_S = 2 * 3600
AGENT_EMAIL = web.RequestKey("zendesk_agent_email", str)
Details = dict[str, list[dict[str, str]]]


def check_auth(request: web.Request) -> web.Response | None:
    """HTTP Basic with ``{email}/token:{api_token}``; anything else is 401."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    user, token = "", ""
    if scheme.lower() == "basic":
        try:
            user, _, token = base64.b64decode(encoded.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = ""
    email, _, suffix = user.partition("/")
    if "@" not in email or suffix != "token" or not token_ok(state_of(request).settings, token):
        return json_response({"error": "Couldn't authenticate you"}, status=401)
    request[AGENT_EMAIL] = email.lower()
    return None


def rate_limit_headers(state: SandboxState) -> dict[str, str]:
    """Per-minute counters like Zendesk's; the sandbox reports them but does not enforce."""
    window = int(state.clock() // 60)
    if state.zendesk_window[0] != window:
        state.zendesk_window[:] = [window, 0]
    state.zendesk_window[1] += 1
    limit = state.settings.zendesk_rate_limit
    remaining = max(0, limit - int(state.zendesk_window[1]))
    return {"X-Rate-Limit": str(limit), "X-Rate-Limit-Remaining": str(remaining)}


def invalid(details: Details, status: int = 422) -> web.Response:
    body = {"error": "RecordInvalid", "description": "Record validation errors", "details": details}
    return json_response(body, status=status)


def not_found() -> web.Response:
    return json_response(
        {"error": "RecordNotFound", "description": "Not found"},
        status=404,
    )


def _err(details: Details, field: str, description: str, error: str = "InvalidValue") -> None:
    details.setdefault(field, []).append({"description": description, "error": error})


def validate_ticket(ticket: Any, *, creating: bool) -> Details:
    """Field errors in the shape of Zendesk's ``details``; empty when valid."""
    details: Details = {}
    comment = ticket.get("comment")
    if comment is not None:
        if not isinstance(comment, dict) or not (comment.get("body") or comment.get("html_body")):
            _err(details, "comment", "Comment: needs a body or html_body", "BlankValue")
        elif "public" in comment and not isinstance(comment["public"], bool):
            _err(details, "comment", "Comment: public must be true or false")
    elif creating:
        _err(details, "base", "Description: cannot be blank", "BlankValue")
    for name, allowed in (("priority", PRIORITIES), ("type", TYPES), ("status", STATUSES)):
        value = ticket.get(name)
        if value is not None and value not in allowed:
            _err(details, name, f"{name.capitalize()}: {value} is not valid")
    fields = ticket.get("custom_fields")
    if fields is not None and not (
        isinstance(fields, list)
        and all(isinstance(f, dict) and isinstance(f.get("id"), int) for f in fields)
    ):
        _err(details, "custom_fields", "Custom fields: each item needs an integer id")
    tags = ticket.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        _err(details, "tags", "Tags: must be a list of strings")
    for name in ("subject", "external_id"):
        if ticket.get(name) is not None and not isinstance(ticket[name], str):
            _err(details, name, f"{name.capitalize()}: must be a string")
    requester = ticket.get("requester")
    if requester is not None:
        email = requester.get("email") if isinstance(requester, dict) else requester
        if isinstance(requester, dict) and not (requester.get("email") or requester.get("name")):
            _err(details, "requester", "Requester: needs an email or a name", "BlankValue")
        elif isinstance(email, str) and "@" not in email:
            _err(details, "requester", f"Requester: Email {email} is not properly formatted")
        elif not isinstance(requester, dict | str | int):
            _err(details, "requester", "Requester: must be an email, a user id or {name, email}")
    return details


def normalize_tags(tags: list[str]) -> list[str]:
    """Zendesk lower-cases tags, splits on spaces and keeps each once."""
    out: list[str] = []
    for tag in tags:
        for part in tag.lower().split():
            if part not in out:
                out.append(part)
    return out


async def _ticket_body(request: web.Request) -> tuple[dict[str, Any] | None, web.Response | None]:
    body, problem = await read_json(request)
    if problem:
        return None, invalid({"base": [{"description": problem, "error": "InvalidFormat"}]}, 400)
    if not isinstance(body, dict) or not isinstance(body.get("ticket"), dict):
        msg = "the body must be an object with a 'ticket' object"
        return None, invalid({"ticket": [{"description": msg, "error": "Missing"}]}, 400)
    return body, None


def _user_id(state: SandboxState, email: str | None, name: str | None) -> int:
    if email:
        found = state.store.by_key("zd_users", email.lower())
        if found:
            return found[0].id
    doc = {"email": (email or "").lower() or None, "name": name or (email or "").split("@")[0]}
    key = email.lower() if email else None
    return state.store.insert("zd_users", doc, created_ts=state.clock(), key=key)


def _requester_id(state: SandboxState, requester: Any, agent_id: int) -> int:
    if isinstance(requester, int):
        return requester
    if isinstance(requester, str):
        return _user_id(state, requester, None)
    if isinstance(requester, dict):
        return _user_id(state, requester.get("email"), requester.get("name"))
    return agent_id


def _add_comment(state: SandboxState, ticket_id: int, comment: dict[str, Any], author: int) -> int:
    body = comment.get("body") or comment.get("html_body") or ""
    doc = {
        "type": "Comment",
        "body": body,
        "html_body": comment.get("html_body") or f"<p>{body}</p>",
        "plain_body": body,
        "public": comment.get("public", True),
        "author_id": comment.get("author_id") or author,
        "created_at": iso(state.clock()),
    }
    return state.store.insert("zd_comments", doc, created_ts=state.clock(), key=str(ticket_id))


def _merge_fields(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged = {f["id"]: f.get("value") for f in old}
    merged.update({f["id"]: f.get("value") for f in new})
    return [{"id": k, "value": v} for k, v in merged.items()]


def render(request: web.Request, row: Row) -> dict[str, Any]:
    """The TicketObject as Zendesk returns it: every configured custom field, set or not."""
    state = state_of(request)
    doc = dict(row.doc)
    doc.pop("updated_ts", None)
    known = {f["id"]: f.get("value") for f in doc.get("custom_fields", [])}
    for field_id in state.settings.zendesk_custom_fields.values():
        known.setdefault(field_id, None)
    doc["custom_fields"] = [{"id": k, "value": v} for k, v in known.items()]
    doc["fields"] = doc["custom_fields"]
    doc["url"] = f"{request.url.origin()}{PREFIX}/tickets/{row.id}.json"
    return {"id": row.id, **doc}


def _body_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


async def create_ticket(request: web.Request) -> web.Response:
    state = state_of(request)
    body, error = await _ticket_body(request)
    if error or body is None:
        return error or not_found()
    key = request.headers.get("Idempotency-Key")
    digest = _body_hash(body)
    if key:
        for old in state.store.by_key("zd_idempotency", key):
            if state.clock() - old.created_ts > IDEMPOTENCY_TTL_S:
                state.store.delete_key("zd_idempotency", key)
            elif old.doc["body_hash"] != digest:
                return json_response(
                    {
                        "error": "IdempotentRequestError",
                        "description": "Request parameters do not match the original request "
                        "for this idempotency key",
                    },
                    status=400,
                )
            else:
                row = state.store.get("zd_tickets", old.doc["ticket_id"])
                if row is not None:
                    return _created(request, row, "hit")
    ticket = body["ticket"]
    details = validate_ticket(ticket, creating=True)
    if details:
        return invalid(details)
    now = state.clock()
    agent = _user_id(state, request[AGENT_EMAIL], None)
    comment = ticket["comment"]
    doc = {
        "subject": ticket.get("subject") or (comment.get("body") or "")[:80],
        "raw_subject": ticket.get("subject"),
        "description": comment.get("body") or comment.get("html_body"),
        "status": ticket.get("status") or "new",
        "priority": ticket.get("priority"),
        "type": ticket.get("type"),
        "requester_id": _requester_id(state, ticket.get("requester"), agent),
        "submitter_id": agent,
        "external_id": ticket.get("external_id"),
        "tags": normalize_tags(ticket.get("tags") or []),
        "custom_fields": _merge_fields([], ticket.get("custom_fields") or []),
        "created_at": iso(now),
        "updated_at": iso(now),
        "updated_ts": now,
    }
    ticket_id = state.store.insert("zd_tickets", doc, created_ts=now, key=doc["external_id"])
    _add_comment(state, ticket_id, comment, agent)
    if key:
        hash_doc = {"body_hash": digest, "ticket_id": ticket_id}
        state.store.insert("zd_idempotency", hash_doc, created_ts=now, key=key)
    row = state.store.get("zd_tickets", ticket_id)
    assert row is not None
    return _created(request, row, "miss" if key else None)


def _created(request: web.Request, row: Row, lookup: str | None) -> web.Response:
    headers = {"Location": f"{request.url.origin()}{PREFIX}/tickets/{row.id}.json"}
    if lookup:
        headers["x-idempotency-lookup"] = lookup
    return json_response({"ticket": render(request, row)}, status=201, headers=headers)


def _load(request: web.Request) -> Row | None:
    return state_of(request).store.get("zd_tickets", int(request.match_info["ticket_id"]))


async def show_ticket(request: web.Request) -> web.Response:
    row = _load(request)
    return json_response({"ticket": render(request, row)}) if row else not_found()


async def update_ticket(request: web.Request) -> web.Response:
    state = state_of(request)
    row = _load(request)
    if row is None:
        return not_found()
    body, error = await _ticket_body(request)
    if error or body is None:
        return error or not_found()
    ticket = body["ticket"]
    details = validate_ticket(ticket, creating=False)
    if details:
        return invalid(details)
    doc = dict(row.doc)
    if ticket.get("safe_update") and ticket.get("updated_stamp") != doc["updated_at"]:
        return json_response(
            {
                "error": "UpdateConflict",
                "description": "Safe Update prevented the update due to outdated ticket data. "
                "Please fetch the latest ticket data and try again.",
            },
            status=409,
        )
    events: list[dict[str, Any]] = []
    for name in ("subject", "status", "priority", "type", "external_id"):
        if name in ticket and ticket[name] != doc.get(name):
            events.append({"type": "Change", "field_name": name, "value": ticket[name]})
            doc[name] = ticket[name]
    if "tags" in ticket:  # PUT on the ticket replaces the tag list
        doc["tags"] = normalize_tags(ticket["tags"])
        events.append({"type": "Change", "field_name": "tags", "value": doc["tags"]})
    if "custom_fields" in ticket:
        doc["custom_fields"] = _merge_fields(doc["custom_fields"], ticket["custom_fields"])
    agent = _user_id(state, request[AGENT_EMAIL], None)
    if "requester" in ticket:
        doc["requester_id"] = _requester_id(state, ticket["requester"], agent)
    if ticket.get("comment"):
        comment_id = _add_comment(state, row.id, ticket["comment"], agent)
        events.append(
            {"type": "Comment", "id": comment_id, "public": ticket["comment"].get("public", True)}
        )
    now = state.clock()
    doc["updated_at"], doc["updated_ts"] = iso(now), now
    state.store.update("zd_tickets", row.id, doc)
    fresh = state.store.get("zd_tickets", row.id)
    assert fresh is not None
    audit = {"ticket_id": row.id, "created_at": iso(now), "author_id": agent, "events": events}
    return json_response({"ticket": render(request, fresh), "audit": audit})


async def ticket_tags(request: web.Request) -> web.Response:
    """PUT adds tags, POST replaces them, DELETE removes them (Zendesk's three verbs)."""
    state = state_of(request)
    row = _load(request)
    if row is None:
        return not_found()
    body, problem = await read_json(request)
    tags = body.get("tags") if isinstance(body, dict) else None
    if problem or not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return invalid(
            {"tags": [{"description": "tags must be a list of strings", "error": "InvalidValue"}]},
            400,
        )
    doc = dict(row.doc)
    if body.get("safe_update") in (True, "true") and body.get("updated_stamp") != doc["updated_at"]:
        return json_response(
            {"error": "UpdateConflict", "description": "the ticket changed since updated_stamp"},
            status=409,
        )
    given = normalize_tags(tags)
    if request.method == "PUT":
        doc["tags"] = normalize_tags(doc["tags"] + given)
    elif request.method == "POST":
        doc["tags"] = given
    else:
        doc["tags"] = [t for t in doc["tags"] if t not in given]
    now = state.clock()
    doc["updated_at"], doc["updated_ts"] = iso(now), now
    state.store.update("zd_tickets", row.id, doc)
    return json_response({"tags": doc["tags"]})


async def list_comments(request: web.Request) -> web.Response:
    row = _load(request)
    if row is None:
        return not_found()
    rows = state_of(request).store.by_key("zd_comments", str(row.id))
    comments = [{"id": c.id, **c.doc} for c in rows]
    return json_response(
        {"comments": comments, "count": len(comments), "next_page": None, "previous_page": None}
    )


async def list_tickets(request: web.Request) -> web.Response:
    store = state_of(request).store
    external_id = request.query.get("external_id")
    rows = (
        store.by_key("zd_tickets", external_id) if external_id else list(store.rows("zd_tickets"))
    )
    tickets = [render(request, r) for r in rows]
    return json_response(
        {"tickets": tickets, "count": len(tickets), "next_page": None, "previous_page": None}
    )


async def search(request: web.Request) -> web.Response:
    state = state_of(request)
    query = request.query.get("query")
    if not query:
        return json_response(
            {"error": "InvalidValue", "description": "query parameter is required"}, status=400
        )
    try:
        wants_tickets, predicates = compile_query(query, state.clock())
    except QueryError as exc:
        return json_response({"error": "unprocessable", "description": str(exc)}, status=422)
    emails: dict[Any, Any] = {u.id: u.doc.get("email") for u in state.store.rows("zd_users")}
    cutoff = state.search_cutoff()
    hits: list[Row] = []
    for row in state.store.rows("zd_tickets") if wants_tickets else []:
        if row.created_ts > cutoff:  # not indexed yet
            continue
        view = {**row.doc, "id": row.id, "created_ts": row.created_ts}
        view["requester_email"] = emails.get(row.doc.get("requester_id"))
        if all(p(view) for p in predicates):
            hits.append(row)
    sort_by = request.query.get("sort_by", "created_at")
    reverse = request.query.get("sort_order", "desc") == "desc"
    hits.sort(key=lambda r: (str(r.doc.get(sort_by) or ""), r.id), reverse=reverse)
    per_page = min(int(request.query.get("per_page", "100")), 100)
    page = int(request.query.get("page", "1"))
    chunk = hits[(page - 1) * per_page : page * per_page]
    results = [{**render(request, r), "result_type": "ticket"} for r in chunk]
    more = page * per_page < len(hits)
    next_page = f"{request.url.origin()}{PREFIX}/search.json?page={page + 1}" if more else None
    return json_response(
        {
            "results": results,
            "count": len(hits),
            "next_page": next_page,
            "previous_page": None,
            "facets": None,
        }
    )


async def ticket_fields(request: web.Request) -> web.Response:
    fields = [
        {"id": fid, "title": title, "raw_title": title, "type": "text", "active": True}
        for title, fid in state_of(request).settings.zendesk_custom_fields.items()
    ]
    return json_response({"ticket_fields": fields, "count": len(fields)})


def add_routes(app: web.Application) -> None:
    tid = "{ticket_id:\\d+}"
    routes: list[tuple[str, str, Any]] = [
        ("POST", "/tickets", create_ticket),
        ("GET", "/tickets", list_tickets),
        ("GET", f"/tickets/{tid}", show_ticket),
        ("PUT", f"/tickets/{tid}", update_ticket),
        ("PUT", f"/tickets/{tid}/tags", ticket_tags),
        ("POST", f"/tickets/{tid}/tags", ticket_tags),
        ("DELETE", f"/tickets/{tid}/tags", ticket_tags),
        ("GET", f"/tickets/{tid}/comments", list_comments),
        ("GET", "/search", search),
        ("GET", "/ticket_fields", ticket_fields),
    ]
    for method, path, handler in routes:
        for suffix in ("", ".json"):
            app.router.add_route(method, PREFIX + path + suffix, handler)
