"""Fake HubSpot CRM: notes (v3 objects), contact search, v4 note-to-contact associations.

Mounted under ``/hubspot``. Errors use HubSpot's ``Error`` schema:
``{status: "error", category, correlationId, message, errors[], context}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from handoff.connectors.sandbox.hubspot_search import (
    SearchError,
    check_request,
    matches,
    sort_and_page,
)
from handoff.connectors.sandbox.state import (
    SandboxState,
    bearer_token,
    iso_ms,
    json_response,
    new_request_id,
    read_json,
    state_of,
    token_ok,
)
from handoff.connectors.sandbox.store import Row

PREFIX = "/hubspot"
NOTE_BODY_LIMIT = 65_536
NOTE_PROPERTIES = frozenset(
    {"hs_timestamp", "hs_note_body", "hubspot_owner_id", "hs_attachment_ids"}
    | {"handoff_conversation_id"}  # a custom note property the sandbox pre-defines
)
READ_ONLY = frozenset({"hs_object_id", "hs_createdate", "hs_lastmodifieddate"})
NOTE_DEFAULTS = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")
CONTACT_DEFAULTS = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
CONTACT_TO_NOTE_TYPE_ID = 201
NOTES = ("notes", "note", "0-46")
CONTACTS = ("contacts", "contact", "0-1")


def error(
    status: int,
    category: str,
    message: str,
    errors: list[dict[str, Any]] | None = None,
    context: dict[str, Any] | None = None,
) -> web.Response:
    body = {
        "status": "error",
        "message": message,
        "correlationId": new_request_id(),
        "category": category,
        "errors": errors or [],
        "context": context or {},
    }
    return json_response(body, status=status)


def check_auth(request: web.Request) -> web.Response | None:
    if token_ok(state_of(request).settings, bearer_token(request)):
        return None
    return error(
        401,
        "INVALID_AUTHENTICATION",
        "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
    )


def _not_found(object_id: str) -> web.Response:
    return error(
        404,
        "OBJECT_NOT_FOUND",
        "Object not found.  objectId are usually numeric.",
        context={"id": [object_id]},
    )


def _validation(message: str, errors: list[dict[str, Any]]) -> web.Response:
    return error(400, "VALIDATION_ERROR", message, errors)


def _check_properties(props: Any, *, creating: bool) -> web.Response | None:
    if not isinstance(props, dict) or not all(isinstance(k, str) for k in props):
        return _validation("properties must be an object of property names to values", [])
    problems: list[dict[str, Any]] = []
    for name in props:
        if name in READ_ONLY:
            problems.append(_prop_error(name, f'Property "{name}" is read only', "READ_ONLY_VALUE"))
        elif name not in NOTE_PROPERTIES:
            msg = f'Property "{name}" does not exist'
            problems.append(_prop_error(name, msg, "PROPERTY_DOESNT_EXIST"))
    if creating and not props.get("hs_timestamp"):
        msg = "hs_timestamp is required"
        problems.append(_prop_error("hs_timestamp", msg, "REQUIRED_PROPERTY"))
    stamp = props.get("hs_timestamp")
    if stamp not in (None, "") and not _timestamp_ok(str(stamp)):
        msg = f"{stamp} is not a valid epoch-millisecond or ISO 8601 timestamp"
        problems.append(_prop_error("hs_timestamp", msg, "INVALID_DATE"))
    body = props.get("hs_note_body")
    if body is not None and len(str(body)) > NOTE_BODY_LIMIT:
        msg = f"hs_note_body is {len(str(body))} characters; the limit is {NOTE_BODY_LIMIT}"
        problems.append(_prop_error("hs_note_body", msg, "INVALID_STRING_LENGTH"))
    return _validation("Property values were not valid", problems) if problems else None


def _prop_error(name: str, message: str, code: str) -> dict[str, Any]:
    return {"message": message, "code": code, "context": {"propertyName": [name]}}


def _timestamp_ok(value: str) -> bool:
    if value.isdigit():
        return True
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _note_props(row: Row) -> dict[str, Any]:
    props = {k: (None if v is None else str(v)) for k, v in row.doc["properties"].items()}
    props["hs_object_id"] = str(row.id)
    props["hs_createdate"] = iso_ms(row.created_ts)
    props["hs_lastmodifieddate"] = iso_ms(row.doc["updated_ts"])
    return props


def _render_note(row: Row, wanted: list[str] | None) -> dict[str, Any]:
    props = _note_props(row)
    names = set(NOTE_DEFAULTS) | (set(wanted) if wanted is not None else set(props))
    return {
        "id": str(row.id),
        "properties": {k: props.get(k) for k in sorted(names)},
        "createdAt": iso_ms(row.created_ts),
        "updatedAt": iso_ms(row.doc["updated_ts"]),
        "archived": False,
    }


def _contact_props(row: Row) -> dict[str, Any]:
    return {
        **row.doc,
        "hs_object_id": str(row.id),
        "createdate": iso_ms(row.created_ts),
        "lastmodifieddate": iso_ms(row.created_ts),
    }


def _associate(state: SandboxState, note_id: int, contact_id: int, category: str, type_id: int):
    doc = {"note_id": note_id, "contact_id": contact_id, "category": category, "type_id": type_id}
    key = f"{note_id}:{contact_id}:{type_id}"
    if not state.store.by_key("hs_assoc", key):
        state.store.insert("hs_assoc", doc, created_ts=state.clock(), key=key)


def _assoc_problem(state: SandboxState, contact_id: Any, types: Any) -> str | None:
    if not str(contact_id).isdigit() or state.store.get("hs_contacts", int(contact_id)) is None:
        return f"contact {contact_id} does not exist"
    if not isinstance(types, list) or not types:
        return "each association needs a non-empty list of types"
    for t in types:
        if (
            not isinstance(t, dict)
            or t.get("associationTypeId") != state.settings.note_contact_type_id
        ):
            return f"association type {t!r} is not valid from notes to contacts"
        if t.get("associationCategory") != "HUBSPOT_DEFINED":
            return f"association category {t.get('associationCategory')!r} does not match the type"
    return None


async def create_note(request: web.Request) -> web.Response:
    state = state_of(request)
    body, problem = await read_json(request)
    if problem or not isinstance(body, dict):
        return _validation(problem or "the body must be a JSON object", [])
    props = body.get("properties")
    bad = _check_properties(props, creating=True)
    if bad or not isinstance(props, dict):
        return bad or _validation("properties are required", [])
    associations = body.get("associations") or []
    for a in associations if isinstance(associations, list) else [None]:
        to_id = (
            a.get("to", {}).get("id")
            if isinstance(a, dict) and isinstance(a.get("to"), dict)
            else None
        )
        reason = _assoc_problem(state, to_id, a.get("types") if isinstance(a, dict) else None)
        if reason:
            return error(400, "VALIDATION_ERROR", f"One or more associations are invalid: {reason}")
    now = state.clock()
    doc = {"properties": dict(props), "updated_ts": now}
    note_id = state.store.insert(
        "hs_notes", doc, created_ts=now, key=props.get("handoff_conversation_id")
    )
    for a in associations:
        for t in a["types"]:
            _associate(
                state, note_id, int(a["to"]["id"]), t["associationCategory"], t["associationTypeId"]
            )
    row = state.store.get("hs_notes", note_id)
    assert row is not None
    return json_response(_render_note(row, None), status=201)


def _note_row(request: web.Request) -> Row | None:
    raw = request.match_info["note_id"]
    return state_of(request).store.get("hs_notes", int(raw)) if raw.isdigit() else None


async def update_note(request: web.Request) -> web.Response:
    state = state_of(request)
    row = _note_row(request)
    if row is None:
        return _not_found(request.match_info["note_id"])
    body, problem = await read_json(request)
    if problem or not isinstance(body, dict):
        return _validation(problem or "the body must be a JSON object", [])
    bad = _check_properties(body.get("properties"), creating=False)
    if bad:
        return bad
    props = dict(row.doc["properties"])
    for name, value in body["properties"].items():
        if value == "":
            props.pop(name, None)  # "" clears a value
        else:
            props[name] = value
    state.store.update("hs_notes", row.id, {"properties": props, "updated_ts": state.clock()})
    fresh = state.store.get("hs_notes", row.id)
    assert fresh is not None
    return json_response(_render_note(fresh, None))


def _split(value: str | None) -> list[str]:
    return [p for p in (value or "").split(",") if p]


async def get_note(request: web.Request) -> web.Response:
    state = state_of(request)
    row = _note_row(request)
    if row is None:
        return _not_found(request.match_info["note_id"])
    wanted = _split(request.query.get("properties"))
    note = _render_note(row, wanted)
    if any(a in CONTACTS for a in _split(request.query.get("associations"))):
        results = [
            {"id": str(a.doc["contact_id"]), "type": "note_to_contact"}
            for a in state.store.rows("hs_assoc")
            if a.doc["note_id"] == row.id
        ]
        if results:
            note["associations"] = {"contacts": {"results": results}}
    return json_response(note)


def _assoc_contacts(state: SandboxState) -> dict[int, list[str]]:
    """Contact ids associated with each note, read in one pass (a search used to rescan the
    associations once per note: quadratic, and the sandbox's main cost at 1,000 notes)."""
    out: dict[int, list[str]] = {}
    for a in state.store.rows("hs_assoc"):
        out.setdefault(a.doc["note_id"], []).append(str(a.doc["contact_id"]))
    return out


async def search_notes(request: web.Request) -> web.Response:
    state = state_of(request)
    body, problem = await read_json(request)
    try:
        if problem:
            raise SearchError(problem)
        check_request(body)
    except SearchError as exc:
        return error(400, "VALIDATION_ERROR", str(exc))
    cutoff = state.search_cutoff()
    found: list[dict[str, Any]] = []
    rows: dict[str, Row] = {}
    assoc = _assoc_contacts(state)
    for row in state.store.rows("hs_notes"):
        if row.created_ts > cutoff:  # not indexed yet
            continue
        props = _note_props(row)
        contacts = assoc.get(row.id, [])
        props["associations.contact"] = contacts[0] if len(contacts) == 1 else ";".join(contacts)
        if matches(props, body, ("hs_note_body",)):
            found.append(props)
            rows[props["hs_object_id"]] = row
    page, after = sort_and_page(found, body)
    wanted = body.get("properties") or []
    results = [_render_note(rows[p["hs_object_id"]], wanted) for p in page]
    return json_response(_search_body(len(found), results, after))


def _search_body(total: int, results: list[dict[str, Any]], after: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"total": total, "results": results}
    if after is not None:
        out["paging"] = {"next": {"after": after}}
    return out


async def search_contacts(request: web.Request) -> web.Response:
    """Contacts are searchable at once: the sandbox does not apply index lag to them."""
    state = state_of(request)
    body, problem = await read_json(request)
    try:
        if problem:
            raise SearchError(problem)
        check_request(body)
    except SearchError as exc:
        return error(400, "VALIDATION_ERROR", str(exc))
    found = [
        _contact_props(r)
        for r in state.store.rows("hs_contacts")
        if matches(_contact_props(r), body, ("email", "firstname", "lastname"))
    ]
    page, after = sort_and_page(found, body)
    names = set(CONTACT_DEFAULTS) | set(body.get("properties") or [])
    results = [
        {
            "id": p["hs_object_id"],
            "properties": {k: p.get(k) for k in sorted(names)},
            "createdAt": p["createdate"],
            "updatedAt": p["lastmodifieddate"],
            "archived": False,
        }
        for p in page
    ]
    return json_response(_search_body(len(found), results, after))


async def association_labels(request: web.Request) -> web.Response:
    state = state_of(request)
    pair = (request.match_info["from_type"], request.match_info["to_type"])
    results: list[dict[str, Any]] = []
    if pair[0] in NOTES and pair[1] in CONTACTS:
        results = [
            {
                "category": "HUBSPOT_DEFINED",
                "typeId": state.settings.note_contact_type_id,
                "label": None,
            }
        ]
    elif pair[0] in CONTACTS and pair[1] in NOTES:
        results = [
            {"category": "HUBSPOT_DEFINED", "typeId": CONTACT_TO_NOTE_TYPE_ID, "label": None}
        ]
    return json_response({"results": results})


async def associate(request: web.Request) -> web.Response:
    """PUT .../associations/contacts/{id} (body: types) or .../associations/default/... ."""
    state = state_of(request)
    info = request.match_info
    if info["object_type"] not in NOTES or info["to_type"] not in CONTACTS:
        return error(400, "VALIDATION_ERROR", "the sandbox associates notes with contacts only")
    note = _note_row(request)
    if note is None:
        return _not_found(info["note_id"])
    contact_id = info["contact_id"]
    default = "default" in info
    types: Any = [
        {
            "associationCategory": "HUBSPOT_DEFINED",
            "associationTypeId": state.settings.note_contact_type_id,
        }
    ]
    if not default:
        types, problem = await read_json(request)
        if problem:
            return _validation(problem, [])
    reason = _assoc_problem(state, contact_id, types)
    if reason:
        status = 404 if "does not exist" in reason else 400
        return error(status, "VALIDATION_ERROR" if status == 400 else "OBJECT_NOT_FOUND", reason)
    for t in types:
        _associate(
            state, note.id, int(contact_id), t["associationCategory"], t["associationTypeId"]
        )
    if default:
        now = iso_ms(state.clock())
        spec = {
            "associationCategory": "HUBSPOT_DEFINED",
            "associationTypeId": state.settings.note_contact_type_id,
        }
        result = {"from": {"id": str(note.id)}, "to": {"id": contact_id}, "associationSpec": spec}
        return json_response(
            {"status": "COMPLETE", "results": [result], "startedAt": now, "completedAt": now}
        )
    return json_response(
        {
            "fromObjectTypeId": "0-46",
            "fromObjectId": note.id,
            "toObjectTypeId": "0-1",
            "toObjectId": int(contact_id),
            "labels": [],
        }
    )


def add_contact(state: SandboxState, contact: dict[str, Any]) -> dict[str, Any]:
    """Seed one contact (email, firstname, lastname); returns it as the API shows it."""
    doc = {k: contact.get(k) for k in ("email", "firstname", "lastname")}
    email = str(doc["email"] or "").strip().lower()
    doc["email"] = email or None
    contact_id = state.store.insert("hs_contacts", doc, created_ts=state.clock(), key=email or None)
    row = state.store.get("hs_contacts", contact_id)
    assert row is not None
    return {"id": str(row.id), "properties": _contact_props(row)}


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post(PREFIX + "/crm/v3/objects/notes", create_note)
    r.add_post(PREFIX + "/crm/v3/objects/notes/search", search_notes)
    r.add_get(PREFIX + "/crm/v3/objects/notes/{note_id}", get_note)
    r.add_patch(PREFIX + "/crm/v3/objects/notes/{note_id}", update_note)
    r.add_post(PREFIX + "/crm/v3/objects/contacts/search", search_contacts)
    for labels in (
        "/crm/associations/v4/{from_type}/{to_type}/labels",
        "/crm/v4/associations/{from_type}/{to_type}/labels",
    ):
        r.add_get(PREFIX + labels, association_labels)
    base = PREFIX + "/crm/v4/objects/{object_type}/{note_id}/associations/"
    r.add_put(base + "{default:default}/{to_type}/{contact_id}", associate)
    r.add_put(base + "{to_type}/{contact_id}", associate)
