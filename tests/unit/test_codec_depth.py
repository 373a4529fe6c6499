"""The codec's nesting limit at its boundary, on both sides of the bracket-count shortcut."""

from __future__ import annotations

import orjson
import pytest

from handoff.exceptions import InvalidEvent
from handoff.streams.codec import MAX_DEPTH, decode_event

BASE = {
    "schema_version": 1,
    "event_id": "e1",
    "conversation_id": "c1",
    "occurred_at": "2026-11-30T09:00:00Z",
    "type": "conversation_started",
}


def _nested(levels: int) -> object:
    """A value whose deepest node sits at depth ``levels`` (the value itself is depth 1)."""
    value: object = "leaf"
    for _ in range(levels - 1):
        value = [value]
    return value


def test_a_field_nested_exactly_max_depth_is_accepted() -> None:
    event = decode_event(orjson.dumps({**BASE, "context": {"k": _nested(MAX_DEPTH - 1)}}))
    assert event.type == "conversation_started"


def test_one_level_more_names_the_field() -> None:
    raw = orjson.dumps({**BASE, "context": {"k": _nested(MAX_DEPTH)}})
    with pytest.raises(InvalidEvent) as err:
        decode_event(raw)
    assert str(err.value) == f"field 'context' nests deeper than {MAX_DEPTH} levels"


@pytest.mark.parametrize("brackets", ["{" * 40, "[" * 40, "{[" * 40])
def test_brackets_inside_strings_do_not_count_as_nesting(brackets: str) -> None:
    event = decode_event(orjson.dumps({**BASE, "context": {"note": brackets}}))
    assert event.type == "conversation_started"
    assert event.context == {"note": brackets}
