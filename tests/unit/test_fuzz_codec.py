"""Malformed and hostile events at volume: applied or dead-lettered, never an exception.

Each example takes a valid event from the bundled sample and damages it in one way (a
wrong type, a huge string, deep nesting, control characters, unknown fields, a key that
does not match, bytes that are not UTF-8, a cut-off document), then runs it through
``decode_event`` and a fresh ``Processor``. The record must be either applied (its
``event_id`` is in the conversation's state) or dead-lettered with an error that names the
damaged field; nothing may raise out of ``Processor.handle``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handoff.agents.processor import Processor
from handoff.exceptions import InvalidEvent
from handoff.streams.codec import decode_event
from handoff.streams.topics import TopicNames
from handoff.tables.conversations import ConversationTable
from handoff.worker import DEFAULT_POLICY, load_policy

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = [
    orjson.loads(x)
    for x in (ROOT / "handoff" / "data" / "sample_conversations.jsonl").read_bytes().splitlines()
    if x.strip()
]
POLICY = load_policy(DEFAULT_POLICY)
NAMES = TopicNames()
MAX_BYTES = 64 * 1024
NOW = datetime(2026, 12, 1, tzinfo=UTC)

WRONG_VALUES = st.sampled_from(
    [12345, -1, 1.5, float("1e308"), True, None, [], [1, "a"], {}, {"a": {"b": []}}, "", "x"]
)
CONTROL = st.text(alphabet=st.characters(max_codepoint=0x1F) | st.sampled_from("\x7f\u2028\u202e"))
HOSTILE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=50
) | st.sampled_from(["'; DROP TABLE tickets; --", "<script>alert(1)</script>", "{{7*7}}", "\x00"])


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def __call__(self, topic: str, key: bytes, value: bytes) -> None:
        self.sent.append((topic, key, value))

    def dead(self) -> list[dict[str, Any]]:
        return [orjson.loads(v) for t, _, v in self.sent if t == NAMES.dead_letters]


def _paths(obj: dict[str, Any]) -> list[tuple[str, ...]]:
    """Every key path of the event (objects only), e.g. ``("nlu", "confidence")``."""
    out: list[tuple[str, ...]] = []
    for k, v in obj.items():
        out.append((k,))
        if isinstance(v, dict):
            out.extend((k, *p) for p in _paths(v))
    return out


def _set(obj: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    copy = orjson.loads(orjson.dumps(obj))
    node = copy
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return copy


@st.composite
def damaged(draw: st.DrawFn) -> tuple[bytes | None, bytes | None, str, str]:
    """(key, value, what was done, the field an error must name, '' when any may be)."""
    event = draw(st.sampled_from(SAMPLE))
    key: bytes | None = event["conversation_id"].encode()
    kind = draw(
        st.sampled_from(
            [
                "wrong_type",
                "huge_string",
                "deep",
                "control",
                "unknown_fields",
                "mismatched_key",
                "non_utf8",
                "non_utf8_key",
                "truncated",
                "not_an_object",
                "missing_field",
            ]
        )
    )
    field = ""
    if kind == "wrong_type":
        path = draw(st.sampled_from(_paths(event)))
        event = _set(event, path, draw(WRONG_VALUES))
        field = path[-1]
    elif kind == "huge_string":
        path = draw(st.sampled_from(_paths(event)))
        size = draw(st.sampled_from([129, 5_000, 60_000, 200_000]))
        event = _set(event, path, "\u00e9" * size)
        field = path[-1] if size * 2 < MAX_BYTES else "value"
    elif kind == "deep":
        depth = draw(st.sampled_from([5, 100, 300, 600, 2000]))
        where = draw(st.sampled_from([("x_extra",), ("context",)]))
        event = _set(event, where, "__DEEP__")
        field = "value" if 2 * depth >= 1024 else where[0] if 2 * depth > 30 else ""
    elif kind == "control":
        path = draw(st.sampled_from(_paths(event)))
        event = _set(event, path, draw(CONTROL))
        field = path[-1]
    elif kind == "unknown_fields":
        extra = draw(
            st.dictionaries(
                st.from_regex(r"x_[a-z0-9_]{1,20}", fullmatch=True),
                HOSTILE_TEXT,
                min_size=1,
                max_size=5,
            )
        )
        event = {**event, **extra}
        field = "-"  # must be applied
    elif kind == "mismatched_key":
        key = draw(
            st.sampled_from([b"someone-else", b"", event["conversation_id"].encode() + b" "])
        )
        field = "conversation_id"
    elif kind == "not_an_object":
        value = draw(st.sampled_from([b"[]", b"null", b"42", b'"text"', b"true"]))
        return key, value, kind, "value"
    elif kind == "missing_field":
        path = draw(st.sampled_from([p for p in _paths(event) if len(p) == 1]))
        event = {k: v for k, v in event.items() if k != path[0]}
        field = path[0]
    raw = orjson.dumps(event)
    if kind == "deep":  # spliced in as text: orjson will not write more than 255 levels
        raw = raw.replace(b'"__DEEP__"', b'{"n":[' * depth + b'"leaf"' + b"]}" * depth)
    elif kind == "non_utf8":
        i = draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"])) + raw[i:]
        field = "value"
    elif kind == "non_utf8_key":
        key = b"\xff\xfe" + (key or b"")
        field = "key"
    elif kind == "truncated":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
        field = "value"
    return key, raw, kind, field


def _run(key: bytes | None, value: bytes | None) -> tuple[Processor, Outbox]:
    outbox = Outbox()
    proc = Processor(
        table=ConversationTable({}),
        policy=POLICY,
        topics=NAMES,
        send=outbox,
        max_event_bytes=MAX_BYTES,
        clock=lambda: NOW,
    )
    loop = asyncio.new_event_loop()
    try:  # Processor.handle must never raise: any exception fails the test right here
        loop.run_until_complete(proc.handle(NAMES.events, 0, 0, key, value))
    finally:
        loop.close()
    return proc, outbox


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_each_damaged_event_is_applied_or_dead_lettered_naming_the_field(
    case: tuple[bytes | None, bytes | None, str, str],
) -> None:
    key, value, kind, field = case
    proc, outbox = _run(key, value)
    dead = outbox.dead()
    if dead:
        assert len(dead) == 1
        error = dead[0]["error"]
        assert error.startswith("field '"), (kind, error)
        assert field != "-", f"an event with unknown fields was dead-lettered: {error}"
        if field and not error.startswith("processing raised"):
            assert field in error, (kind, field, error)
        try:  # the codec alone agrees, unless the core itself gave up on the event
            decode_event(value, key, max_bytes=MAX_BYTES)
        except InvalidEvent as exc:
            assert str(exc) == error
        return
    event = orjson.loads(value or b"")
    state = proc.table.get(event["conversation_id"].encode())
    assert state is not None and event["event_id"] in state.applied_ids, kind


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.builds(
            orjson.dumps,
            st.recursive(
                st.none()
                | st.booleans()
                | st.integers(-(2**63), 2**63 - 1)
                | st.floats(allow_nan=False)
                | HOSTILE_TEXT,
                lambda inner: (
                    st.lists(inner, max_size=4) | st.dictionaries(HOSTILE_TEXT, inner, max_size=4)
                ),
                max_leaves=20,
            ),
        ),
    ),
    st.none() | st.binary(max_size=20),
)
def test_arbitrary_bytes_never_raise_out_of_the_processor(value: bytes, key: bytes | None) -> None:
    _, outbox = _run(key, value)
    dead = outbox.dead()
    assert len(dead) <= 1
    assert all(d["error"].startswith("field '") for d in dead)
