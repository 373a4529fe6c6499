"""The one place that turns wire bytes into contract models, and bad bytes into dead letters.

``decode_event`` raises :class:`~handoff.exceptions.InvalidEvent` whose message names the
field and the problem; ``dead_letter`` wraps the original bytes (base64) with that message.
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from handoff.exceptions import InvalidEvent
from handoff.streams.commands import DeadLetter
from handoff.streams.events import EVENT_ADAPTER, EVENT_TYPES, Event

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
"""How deep objects and arrays may nest inside an event field.

Deeper values parse (orjson allows 1024 levels) and validate (``context`` is free-form),
but the state that keeps them cannot be written back (pydantic and orjson stop at a few
hundred levels), so such an event would raise after it was applied, on every redelivery.
"""


def _too_deep(raw: dict[str, Any]) -> str | None:
    """The first top-level field whose value nests deeper than ``MAX_DEPTH``, if any."""
    for name, value in raw.items():
        stack: list[tuple[Any, int]] = [(value, 1)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_DEPTH:
                return str(name)
            if isinstance(node, dict):
                stack.extend((v, depth + 1) for v in node.values())
            elif isinstance(node, list):
                stack.extend((v, depth + 1) for v in node)
    return None


def _describe(err: ValidationError, event_type: str | None) -> str:
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"]]
    # The discriminated union puts the type tag first in the location; drop it.
    if event_type and loc and loc[0] == event_type:
        loc = loc[1:]
    field = ".".join(loc) or "(root)"
    msg = first["msg"]
    if first["type"] == "missing":
        msg = "is required"
    elif first["type"] == "literal_error" and field == "schema_version":
        msg = f"must be 1, got {first.get('input')!r}"
    where = f"{event_type}." if event_type else ""
    more = len(err.errors()) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"field '{where}{field}' {msg}{tail}"


# The core validator itself: TypeAdapter.validate_python adds a Python-level call per record.
_VALIDATE = EVENT_ADAPTER.validator.validate_python


def decode_event(
    value: bytes | None, key: bytes | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> Event:
    """Parse and validate one record; raise InvalidEvent naming the field on any problem."""
    if value is None:
        raise InvalidEvent("field 'value' is missing: the record has no value (tombstone)")
    if len(value) > max_bytes:
        raise InvalidEvent(f"field 'value' is {len(value)} bytes, over the limit of {max_bytes}")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"field 'value' is not UTF-8 (byte {exc.start})") from None
    try:
        raw: Any = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"field 'value' is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidEvent(f"field 'value' must be a JSON object, got {type(raw).__name__}")
    # Nesting deeper than MAX_DEPTH takes a bracket per level plus the record's own, so a
    # record with fewer brackets (nearly all) needs no walk.
    if value.count(b"{") + value.count(b"[") > MAX_DEPTH:
        deep = _too_deep(raw)
        if deep is not None:
            raise InvalidEvent(f"field '{deep[:64]}' nests deeper than {MAX_DEPTH} levels")
    etype = raw.get("type")
    if etype is None:
        raise InvalidEvent("field 'type' is required")
    if etype not in EVENT_TYPES:
        raise InvalidEvent(f"field 'type' has unknown value {str(etype)[:64]!r}")
    try:
        event = _VALIDATE(raw)
    except ValidationError as exc:
        raise InvalidEvent(_describe(exc, str(etype))) from None
    if key is not None:
        try:
            key_text = key.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidEvent("field 'key' is not UTF-8") from None
        if key_text != event.conversation_id:
            raise InvalidEvent(
                f"field 'conversation_id' ({event.conversation_id[:64]!r}) does not equal "
                f"the record key ({key_text[:64]!r})"
            )
    return event


def encode(model: BaseModel) -> bytes:
    """A contract model as its wire bytes (UTF-8 JSON)."""
    return orjson.dumps(model.model_dump(mode="json"))


def dead_letter(
    *,
    source_topic: str,
    partition: int | None,
    offset: int | None,
    key: bytes | None,
    value: bytes | None,
    error: str,
    now: datetime | None = None,
) -> DeadLetter:
    when = (now or datetime.now(UTC)).isoformat()
    return DeadLetter(
        source_topic=source_topic,
        partition=partition,
        offset=offset,
        key=key.decode("utf-8", "replace") if key is not None else None,
        value=base64.b64encode(value or b"").decode("ascii"),
        error=error,
        failed_at=when,
    )


def dead_letter_message(
    dead_letters_topic: str,
    *,
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error: str,
    now: datetime,
) -> tuple[str, bytes, bytes]:
    """``(topic, key, value)`` of the dead letter for one record, logged once (no body)."""
    log.warning(
        "dead letter topic=%s partition=%d offset=%d error=%s",
        source_topic,
        partition,
        offset,
        error,
    )
    dl = dead_letter(
        source_topic=source_topic,
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        error=error,
        now=now,
    )
    return (dead_letters_topic, key or b"", encode(dl))
