"""Rasa's Kafka event broker -> contract events.

Rasa publishes one tracker event per record (JSON): ``sender_id`` (the conversation),
``event`` (the type), ``timestamp`` (epoch seconds, float) and the type's own fields.
:func:`translate` is pure; :func:`run_bridge` consumes a Rasa topic and produces the
translations into ``conversation-events`` (keyed by ``conversation_id``).

Rasa event -> contract event:

- ``session_started`` -> ``conversation_started`` (``context``: ``source="rasa"``,
  ``input_channel``);
- ``user`` -> ``customer_message``: ``text``; ``nlu.intent``/``confidence`` from
  ``parse_data.intent``; ``nlu.entities`` from ``parse_data.entities`` as
  ``{entity: value}``; for a handoff intent (``HANDOFF_INTENTS``) also ``handoff_requested``;
- ``bot`` -> ``bot_message``: ``step`` is ``metadata.utter_action`` without ``utter_``;
  outcome ``asked`` for ``ask_*`` steps, ``failed`` for fallback/default steps, else
  ``answered`` (without a step: ``asked`` when the text ends in "?");
- ``action`` -> ``handoff_requested`` for a handoff action (``HANDOFF_ACTIONS``), else nothing;
- ``slot`` -> ``identity_captured`` (``verified=false``) for an identity slot
  (``IDENTITY_SLOTS``) with a value, else nothing;
- ``restart`` -> ``conversation_closed`` (``reason="abandoned"``);
- the other Rasa event types in ``IGNORED`` (``active_loop``, ``followup``...) -> nothing.

Anything else -- not JSON, a missing ``sender_id``/``event``/``timestamp``, an unknown event
type, a translation that does not validate -- raises :class:`InvalidEvent` naming the field,
and the bridge writes a dead letter. Event ids are deterministic,
``rasa:{sender_id}:{timestamp}:{event}[:{name}]:{index}``, so a re-consumed record changes
nothing downstream.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from handoff.exceptions import InvalidEvent
from handoff.streams.events import EVENT_ADAPTER, Event

HANDOFF_INTENTS = frozenset({"human_handoff", "handoff", "talk_to_human", "request_human"})
HANDOFF_ACTIONS = frozenset({"action_handoff", "action_human_handoff", "action_talk_to_human"})
IDENTITY_SLOTS = frozenset({"email", "phone", "name", "account_id", "customer_id", "user_id"})
# Rasa tracker events with no counterpart in the contract: consumed, translated to nothing.
IGNORED = frozenset(
    {
        "active_loop",
        "loop_interrupted",
        "followup",
        "reminder",
        "cancel_reminder",
        "pause",
        "resume",
        "rewind",
        "undo",
        "export",
        "reset_slots",
        "all_slots_reset",
        "user_featurization",
        "action_execution_rejected",
        "entities",
        "agent",
        "form",
        "form_validation",
        "stack",
        "flow_started",
        "flow_completed",
        "flow_interrupted",
        "flow_resumed",
        "flow_cancelled",
    }
)
KNOWN = IGNORED | {"user", "bot", "action", "slot", "session_started", "restart"}


def _require(record: Mapping[str, Any], field: str, kind: type | tuple[type, ...]) -> Any:
    value = record.get(field)
    if value is None:
        raise InvalidEvent(f"field 'rasa.{field}' is required")
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidEvent(f"field 'rasa.{field}' has the wrong type ({type(value).__name__})")
    return value


def _event_id(sender: str, ts: float, kind: str, name: str | None, index: int) -> str:
    eid = f"rasa:{sender}:{ts!r}:{kind}{':' + name if name else ''}:{index}"
    if len(eid) <= 128:
        return eid
    # Long sender ids or names: keep the id unique and deterministic within the limit.
    return f"rasa:{hashlib.sha256(eid.encode()).hexdigest()}"


def _bot_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    meta = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
    action = str(meta.get("utter_action") or "") if meta else ""
    step = action.removeprefix("utter_") or None
    text = record.get("text") or ""
    if step and step.startswith("ask_"):
        outcome = "asked"
    elif step and ("fallback" in step or step == "default"):
        outcome = "failed"
    elif not step and isinstance(text, str) and text.rstrip().endswith("?"):
        outcome = "asked"
    else:
        outcome = "answered"
    return {"text": text if isinstance(text, str) else str(text), "step": step, "outcome": outcome}


def _user_fields(record: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    parse = record.get("parse_data") or {}
    if not isinstance(parse, dict):
        raise InvalidEvent("field 'rasa.parse_data' must be an object")
    intent = parse.get("intent") or {}
    if not isinstance(intent, dict):
        raise InvalidEvent("field 'rasa.parse_data.intent' must be an object")
    entities: dict[str, Any] = {}
    for i, ent in enumerate(parse.get("entities") or []):
        if not isinstance(ent, dict) or not isinstance(ent.get("entity"), str):
            raise InvalidEvent(f"field 'rasa.parse_data.entities.{i}.entity' is required")
        entities[ent["entity"]] = ent.get("value")
    nlu: dict[str, Any] = {"entities": entities}
    if intent.get("name") is not None:
        nlu["intent"] = intent["name"]
    if intent.get("confidence") is not None:
        nlu["confidence"] = intent["confidence"]
    text = record.get("text")
    return {"text": text if isinstance(text, str) else "", "nlu": nlu}, nlu.get("intent")


def _bodies(kind: str, record: Mapping[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
    """(name for the id, contract bodies without the envelope) for one Rasa event."""
    if kind == "session_started":
        ctx = {"source": "rasa"}
        if isinstance(record.get("input_channel"), str):
            ctx["input_channel"] = record["input_channel"]
        return None, [{"type": "conversation_started", "context": ctx}]
    if kind == "user":
        fields, intent = _user_fields(record)
        out = [{"type": "customer_message", **fields}]
        if intent in HANDOFF_INTENTS:
            out.append({"type": "handoff_requested", "text": fields["text"] or None})
        return None, out
    if kind == "bot":
        return None, [{"type": "bot_message", **_bot_fields(record)}]
    if kind == "action":
        name = _require(record, "name", str)
        return name, [{"type": "handoff_requested"}] if name in HANDOFF_ACTIONS else []
    if kind == "slot":
        name = _require(record, "name", str)
        value = record.get("value")
        if name not in IDENTITY_SLOTS or value in (None, ""):
            return name, []
        return name, [{"type": "identity_captured", "identity": {name: str(value)}}]
    if kind == "restart":
        return None, [{"type": "conversation_closed", "reason": "abandoned"}]
    return None, []


def translate(record: Mapping[str, Any]) -> list[Event]:
    """The contract events for one Rasa tracker event (possibly none); InvalidEvent if bad."""
    sender = _require(record, "sender_id", str)
    kind = _require(record, "event", str)
    ts = float(_require(record, "timestamp", (int, float)))
    if not sender or len(sender) > 128:
        raise InvalidEvent("field 'rasa.sender_id' must be 1-128 characters")
    if kind not in KNOWN:
        raise InvalidEvent(f"field 'rasa.event' has unknown value {kind[:64]!r}")
    try:
        occurred = datetime.fromtimestamp(ts, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        raise InvalidEvent(f"field 'rasa.timestamp' is not an epoch time: {ts!r}") from None
    name, bodies = _bodies(kind, record)
    events: list[Event] = []
    for index, body in enumerate(bodies):
        raw = {
            "schema_version": 1,
            "event_id": _event_id(sender, ts, kind, name, index),
            "conversation_id": sender,
            "occurred_at": occurred,
            **body,
        }
        try:
            events.append(EVENT_ADAPTER.validate_python(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"][1:])
            raise InvalidEvent(
                f"field 'rasa.{kind}' translates to an invalid {body['type']}: "
                f"'{loc}' {first['msg']}"
            ) from None
    return events


def translate_bytes(value: bytes | None) -> list[Event]:
    """Parse one Rasa record's value and translate it; InvalidEvent names the problem."""
    if value is None:
        raise InvalidEvent("field 'value' is missing: the record has no value (tombstone)")
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"field 'value' is not valid JSON: {exc}") from None
    if not isinstance(record, dict):
        raise InvalidEvent(f"field 'value' must be a JSON object, got {type(record).__name__}")
    return translate(record)
