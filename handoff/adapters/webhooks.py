"""Helpdesk ticket-status webhooks -> ``ticket_status_changed`` events (``handoff ingest``).

``POST /ingest/zendesk`` and ``POST /ingest/intercom``. Every request is verified before
its body is read as JSON:

- Zendesk: ``X-Zendesk-Webhook-Signature`` = base64(HMAC-SHA256(signing secret,
  ``X-Zendesk-Webhook-Signature-Timestamp`` + raw body));
- Intercom: ``X-Hub-Signature`` = ``sha1=`` + hex HMAC-SHA1(app client secret, raw body).

A missing or wrong signature answers 401; an endpoint whose secret is not configured
answers 503 (never accepts unsigned input); an unparseable body answers 400 naming the
field; a notification that is not a status change (other topics, ``ping``) answers 200
``{"ignored": ...}``. An accepted event answers 200 only after Kafka acknowledged it, so the
vendor retries anything we could not store. Retries carry the same event id, and the
processor ignores a seen id, so there is no timestamp window that could reject a late retry.

Bodies accepted (samples in ``tests/adapters/samples/``):

- Zendesk event webhook ``zen:event-type:ticket.status_changed`` (``detail`` is the ticket,
  ``event.current``/``event.previous`` the statuses); the conversation is
  ``detail.external_id`` (the Zendesk connector creates tickets with
  ``external_id = conversation_id``).
- Zendesk trigger webhook with this JSON body (configure it in the trigger)::

    {"ticket": {"id": "{{ticket.id}}", "external_id": "{{ticket.external_id}}",
                "bot_conversation_id": "{{ticket.ticket_field_<FIELD_ID>}}",
                "status": "{{ticket.status}}",
                "updated_at": "{{ticket.updated_at_with_timestamp}}"}}

  The conversation is ``bot_conversation_id``, else ``external_id``.
- Intercom ``notification_event``: ``conversation.admin.closed`` (solved),
  ``conversation.admin.opened`` (reopened), ``conversation.admin.snoozed`` (pending),
  ``conversation.admin.unsnoozed`` (open) with the conversation id as ``data.item.id``;
  ticket topics (``ticket.state.updated``...) with ``data.item.ticket_state`` (its
  ``category``: submitted, in_progress, waiting_on_customer, resolved), the conversation
  from ``ticket_attributes.bot_conversation_id``, else the linked conversation, else the
  ticket's id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from handoff.exceptions import InvalidEvent
from handoff.streams.codec import encode
from handoff.streams.events import TicketStatusChanged

Send = Callable[[bytes, bytes], Awaitable[None]]
"""``send(key, value)``: produce into ``conversation-events``; returns once acknowledged."""

ZENDESK_STATUS = {
    "new": "new",
    "open": "open",
    "pending": "pending",
    "hold": "pending",  # the contract has no "on hold": it waits, like pending
    "solved": "solved",
    "closed": "closed",
}
INTERCOM_TOPICS = {
    "conversation.admin.closed": "solved",
    "conversation.admin.opened": "reopened",
    "conversation.admin.snoozed": "pending",
    "conversation.admin.unsnoozed": "open",
}
INTERCOM_TICKET_STATES = {
    "submitted": "new",
    "in_progress": "open",
    "waiting_on_customer": "pending",
    "resolved": "solved",
}


class Ignored(Exception):
    """A verified notification that is not a ticket status change."""


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii")


def intercom_signature(secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


def _text(obj: Any, path: str) -> str:
    value = _get(obj, path)
    if value is None or value == "" or isinstance(value, dict | list | bool):
        raise InvalidEvent(f"field '{path}' is required (a string or number)")
    return str(value)


def _event(event_id: str, conversation: str, ticket_id: str, status: str, when: str) -> bytes:
    try:
        event = TicketStatusChanged(
            schema_version=1,
            event_id=event_id[:128],
            conversation_id=conversation,
            occurred_at=when,  # type: ignore[arg-type]
            type="ticket_status_changed",
            ticket_id=ticket_id,
            status=status,  # type: ignore[arg-type]
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InvalidEvent(f"field '{field}' {first['msg']}") from None
    return encode(event)


def _zendesk_status(path: str, raw: str, previous: str | None) -> str:
    status = ZENDESK_STATUS.get(raw.strip().lower())
    if status is None:
        raise InvalidEvent(f"field '{path}' has unknown Zendesk status {raw[:32]!r}")
    if status == "open" and previous and previous.strip().lower() in ("solved", "closed"):
        return "reopened"
    return status


def zendesk_event(payload: Any, timestamp: str) -> tuple[str, bytes]:
    """(conversation id, event bytes) for a Zendesk status webhook body."""
    if not isinstance(payload, dict):
        raise InvalidEvent("field 'body' must be a JSON object")
    if "ticket" in payload:
        t = payload["ticket"]
        conv = str(_get(t, "bot_conversation_id") or "") or _text(payload, "ticket.external_id")
        ticket_id = _text(payload, "ticket.id")
        status = _zendesk_status(
            "ticket.status", _text(payload, "ticket.status"), _get(t, "previous_status")
        )
        when = str(_get(t, "updated_at") or timestamp)
        eid = f"zendesk:{ticket_id}:{status}:{when}"
        return conv, _event(eid, conv, ticket_id, status, when)
    kind = _text(payload, "type")
    if kind != "zen:event-type:ticket.status_changed":
        raise Ignored(kind)
    conv = _text(payload, "detail.external_id")
    status = _zendesk_status(
        "event.current", _text(payload, "event.current"), _get(payload, "event.previous")
    )
    eid = f"zendesk:{_text(payload, 'id')}"
    return conv, _event(eid, conv, _text(payload, "detail.id"), status, _text(payload, "time"))


def _epoch(value: Any, field: str) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).isoformat()
    raise InvalidEvent(f"field '{field}' is required (epoch seconds)")


def _intercom_ticket(item: Mapping[str, Any]) -> tuple[str, str, str]:
    state = item.get("ticket_state")
    category = state.get("category") if isinstance(state, dict) else state
    status = INTERCOM_TICKET_STATES.get(str(category))
    if status is None:
        raise InvalidEvent(f"field 'data.item.ticket_state' has unknown value {category!r}")
    conv = _get(item, "ticket_attributes.bot_conversation_id")
    if not conv:
        linked = _get(item, "linked_objects.data") or []
        convs = [
            o.get("id") for o in linked if isinstance(o, dict) and o.get("type") == "conversation"
        ]
        conv = convs[0] if convs else None
    ticket_id = _text({"data": {"item": item}}, "data.item.id")
    return str(conv or ticket_id), ticket_id, status


def intercom_event(payload: Any) -> tuple[str, bytes]:
    """(conversation id, event bytes) for an Intercom notification_event body."""
    if not isinstance(payload, dict):
        raise InvalidEvent("field 'body' must be a JSON object")
    topic = _text(payload, "topic")
    item = _get(payload, "data.item")
    if not isinstance(item, dict):
        raise InvalidEvent("field 'data.item' is required (an object)")
    if item.get("type") == "ticket" and topic.startswith("ticket."):
        conv, ticket_id, status = _intercom_ticket(item)
    elif topic in INTERCOM_TOPICS:
        conv = _text(payload, "data.item.id")
        ticket_id = str(_get(item, "ticket.id") or conv)
        status = INTERCOM_TOPICS[topic]
    else:
        raise Ignored(topic)
    when = _epoch(payload.get("created_at"), "created_at")
    eid = f"intercom:{_text(payload, 'id')}"
    return conv, _event(eid, conv, ticket_id, status, when)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def create_ingest_app(*, zendesk_secret: str, intercom_secret: str, send: Send) -> web.Application:
    """The webhook ingress; ``send`` produces into ``conversation-events``."""

    async def accept(key_and_value: tuple[str, bytes]) -> web.Response:
        conv, value = key_and_value
        try:
            await send(conv.encode("utf-8"), value)
        except Exception as exc:  # the vendor must retry: answer 503, never a silent 200
            return _error(503, f"could not store the event: {type(exc).__name__}")
        return web.json_response({"accepted": orjson.loads(value)["event_id"]})

    async def parse(
        request: web.Request, body: bytes, translate: Callable[[Any], tuple[str, bytes]]
    ) -> web.Response:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(400, "field 'body' is not valid JSON")
        try:
            return await accept(translate(payload))
        except Ignored as why:
            return web.json_response({"ignored": str(why)[:64]})
        except InvalidEvent as exc:
            return _error(400, str(exc))

    async def zendesk(request: web.Request) -> web.Response:
        if not zendesk_secret:
            return _error(503, "HANDOFF_ZENDESK_WEBHOOK_SECRET is not configured")
        body = await request.read()
        ts = request.headers.get("X-Zendesk-Webhook-Signature-Timestamp", "")
        given = request.headers.get("X-Zendesk-Webhook-Signature", "")
        expected = zendesk_signature(zendesk_secret, ts, body)
        if not ts or not hmac.compare_digest(given.encode(), expected.encode()):
            return _error(401, "invalid X-Zendesk-Webhook-Signature")
        return await parse(request, body, lambda p: zendesk_event(p, ts))

    async def intercom(request: web.Request) -> web.Response:
        if not intercom_secret:
            return _error(503, "HANDOFF_INTERCOM_CLIENT_SECRET is not configured")
        body = await request.read()
        given = request.headers.get("X-Hub-Signature", "")
        if not hmac.compare_digest(
            given.encode(), intercom_signature(intercom_secret, body).encode()
        ):
            return _error(401, "invalid X-Hub-Signature")
        return await parse(request, body, intercom_event)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/ingest/zendesk", zendesk)
    app.router.add_post("/ingest/intercom", intercom)
    app.router.add_get("/health", health)
    return app
