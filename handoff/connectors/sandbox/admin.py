"""``/_sandbox``: listings, stats, fault settings, seeding and reset. Never faulted."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from handoff.connectors.sandbox import hubspot, intercom
from handoff.connectors.sandbox.state import SandboxState, iso, json_response, read_json, state_of

PREFIX = "/_sandbox"


def ticket_listing(state: SandboxState) -> list[dict[str, Any]]:
    """Both helpdesks' tickets, with the conversation id each belongs to (when known)."""
    field_id = state.settings.zendesk_custom_fields.get("bot_conversation_id")
    emails: dict[Any, Any] = {u.id: u.doc.get("email") for u in state.store.rows("zd_users")}
    comments = Counter(c.key for c in state.store.rows("zd_comments"))
    out: list[dict[str, Any]] = []
    for row in state.store.rows("zd_tickets"):
        d = row.doc
        conv = next((f["value"] for f in d["custom_fields"] if f["id"] == field_id), None)
        out.append(
            {
                "vendor": "zendesk",
                "id": str(row.id),
                "external_id": d.get("external_id"),
                "bot_conversation_id": conv,
                "subject": d.get("subject"),
                "status": d.get("status"),
                "tags": d.get("tags", []),
                "comments": comments[str(row.id)],
                "requester": emails.get(d.get("requester_id")),
                "created_at": iso(row.created_ts),
            }
        )
    # A converted conversation and its ticket share one thread in Intercom, so notes on
    # the linked conversation count as the ticket's comments.
    conv_parts = {str(r.id): len(r.doc["parts"]) for r in state.store.rows("ic_conversations")}
    for row in state.store.rows("ic_tickets"):
        d = row.doc
        out.append(
            {
                "vendor": "intercom",
                "id": str(row.id),
                "external_id": d.get("conversation_id"),
                "bot_conversation_id": d["attributes"].get("bot_conversation_id"),
                "subject": d["attributes"].get("_default_title_"),
                "status": d["state_id"],
                "tags": [t["name"] for t in d["tags"]],
                "comments": len(d["parts"]) + conv_parts.get(str(d["conversation_id"]), 0),
                "requester": ", ".join(c.get("external_id") or c["id"] for c in d["contacts"]),
                "created_at": iso(row.created_ts),
            }
        )
    return out


def note_listing(state: SandboxState) -> list[dict[str, Any]]:
    contacts: dict[int, list[str]] = {}
    for a in state.store.rows("hs_assoc"):
        contacts.setdefault(a.doc["note_id"], []).append(str(a.doc["contact_id"]))
    return [
        {
            "vendor": "hubspot",
            "id": str(row.id),
            "handoff_conversation_id": row.doc["properties"].get("handoff_conversation_id"),
            "contacts": contacts.get(row.id, []),
            "body_chars": len(str(row.doc["properties"].get("hs_note_body") or "")),
            "created_at": iso(row.created_ts),
        }
        for row in state.store.rows("hs_notes")
    ]


def _duplicates(keys: Iterable[Any]) -> int:
    counts = Counter(k for k in keys if k not in (None, ""))
    return sum(n - 1 for n in counts.values())


def stats(state: SandboxState) -> dict[str, Any]:
    tickets = ticket_listing(state)
    notes = note_listing(state)
    comment_bodies = Counter((c.key, c.doc["body"]) for c in state.store.rows("zd_comments"))
    return {
        "tickets": len(tickets),
        "notes": len(notes),
        "duplicate_tickets": _duplicates(
            (t["vendor"], t["bot_conversation_id"] or t["external_id"]) for t in tickets
        ),
        "duplicate_notes": _duplicates(n["handoff_conversation_id"] for n in notes),
        "duplicate_comments": sum(n - 1 for n in comment_bodies.values()),
        "requests": dict(sorted(state.stats.requests.items())),
        "faults": dict(sorted(state.stats.faults.items())),
        "intercom_validated": state.stats.intercom_validated,
        "intercom_rejected": state.stats.intercom_rejected,
        "fault_config": state.injector.config.to_json(),
    }


async def get_tickets(request: web.Request) -> web.Response:
    return json_response({"tickets": ticket_listing(state_of(request))})


async def get_notes(request: web.Request) -> web.Response:
    return json_response({"notes": note_listing(state_of(request))})


async def get_stats(request: web.Request) -> web.Response:
    return json_response(stats(state_of(request)))


async def get_faults(request: web.Request) -> web.Response:
    return json_response(state_of(request).injector.config.to_json())


async def set_faults(request: web.Request) -> web.Response:
    """Partial update: ``{"error_rate": 0.2, "seed": 7}``; a given seed restarts the draws."""
    state = state_of(request)
    body, problem = await read_json(request)
    if problem or not isinstance(body, dict):
        return json_response({"error": problem or "expected a JSON object"}, status=400)
    try:
        config = state.injector.config.updated(body)
    except (TypeError, ValueError) as exc:
        return json_response({"error": str(exc)}, status=400)
    state.injector.configure(config, reseed="seed" in body)
    return json_response(config.to_json())


async def add_contacts(request: web.Request) -> web.Response:
    """One contact ``{email, firstname, lastname}`` or a list of them."""
    state = state_of(request)
    body, problem = await read_json(request)
    items = body if isinstance(body, list) else [body]
    if problem or not all(isinstance(c, dict) for c in items):
        return json_response({"error": problem or "expected contact objects"}, status=400)
    created = [hubspot.add_contact(state, c) for c in items]
    return json_response({"results": created}, status=201)


async def add_conversation(request: web.Request) -> web.Response:
    """``{id?, email?, title?, body?}``: a customer conversation the connectors may use."""
    state = state_of(request)
    body, _ = await read_json(request)
    spec = body if isinstance(body, dict) else {}
    conv_id = spec.get("id")
    if conv_id is not None and not str(conv_id).isdigit():
        return json_response({"error": "id must be numeric, as Intercom's are"}, status=400)
    if conv_id is not None and state.store.get("ic_conversations", int(conv_id)):
        return json_response({"error": f"conversation {conv_id} exists"}, status=409)
    row = intercom.new_conversation(state, int(conv_id) if conv_id else None, spec)
    return json_response(intercom.render_conversation(state, row), status=201)


async def reset(request: web.Request) -> web.Response:
    """Clear all data and counters, then seed the configured contacts again."""
    state = state_of(request)
    reset_state(state)
    return json_response({"reset": True})


def reset_state(state: SandboxState) -> None:
    state.store.reset()
    state.stats.clear()
    for contact in state.settings.contacts:
        hubspot.add_contact(state, contact)


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>none yet</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r.get(c)))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


async def index(request: web.Request) -> web.Response:
    state = state_of(request)
    s = stats(state)
    summary = ", ".join(
        f"{k}: {s[k]}" for k in ("tickets", "notes", "duplicate_tickets", "duplicate_notes")
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>handoff sandbox</title>"
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:2px 6px}"
        "table{border-collapse:collapse}</style></head><body>"
        f"<h1>handoff sandbox</h1><p>{html.escape(summary)}</p>"
        f"<h2>Tickets</h2>{_table(ticket_listing(state))}"
        f"<h2>CRM notes</h2>{_table(note_listing(state))}"
        "</body></html>"
    )
    return web.Response(text=page, content_type="text/html")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get(PREFIX, index)
    r.add_get(PREFIX + "/tickets", get_tickets)
    r.add_get(PREFIX + "/notes", get_notes)
    r.add_get(PREFIX + "/stats", get_stats)
    r.add_get(PREFIX + "/faults", get_faults)
    r.add_post(PREFIX + "/faults", set_faults)
    r.add_post(PREFIX + "/reset", reset)
    r.add_post(PREFIX + "/hubspot/contacts", add_contacts)
    r.add_post(PREFIX + "/intercom/conversations", add_conversation)
