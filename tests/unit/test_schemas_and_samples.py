"""The committed JSON Schemas and sample file are exactly what the code generates."""

from __future__ import annotations

import io
import random
from contextlib import redirect_stdout
from pathlib import Path

import jsonschema
import orjson
import pytest

from handoff import samples
from handoff.exceptions import InvalidEvent
from handoff.streams.codec import decode_event
from handoff.streams.schema_export import render, schemas

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(schemas()))
def test_committed_schema_matches_code(name: str) -> None:
    committed = (ROOT / "schemas" / f"{name}.schema.json").read_bytes()
    assert committed == render(schemas()[name]), f"run `make schemas` ({name} is stale)"


def test_bundled_sample_is_reproducible() -> None:
    buf = io.StringIO()
    out = io.BytesIO()

    class _Stdout:
        buffer = out

    with redirect_stdout(buf):
        import sys

        real = sys.stdout
        sys.stdout = _Stdout()  # type: ignore[assignment]
        try:
            samples.main(["84", "7"])
        finally:
            sys.stdout = real
    committed = (ROOT / "handoff" / "data" / "sample_conversations.jsonl").read_bytes()
    assert out.getvalue() == committed


def test_every_sample_event_validates_against_schema_and_model() -> None:
    schema = schemas()["event"]
    lines = (ROOT / "handoff" / "data" / "sample_conversations.jsonl").read_bytes().splitlines()
    assert len({orjson.loads(x)["conversation_id"] for x in lines}) >= 60
    for line in lines:
        obj = orjson.loads(line)
        jsonschema.validate(obj, schema)
        ev = decode_event(line, obj["conversation_id"].encode())
        assert ev.event_id == obj["event_id"]


def test_bad_samples_are_rejected_with_the_field_named() -> None:
    lines = (ROOT / "handoff" / "data" / "sample_bad_events.jsonl").read_bytes().splitlines()
    expected = [
        "customer_message.nlu.confidence",
        "handoff_requested.schema_version",
        "handoff_requested.conversation_id",
        "'type' has unknown value",
        "conversation_closed.occurred_at",
        "csat_submitted.score",
        "bot_message.outcome",
        "'value' is not valid JSON",
    ]
    assert len(lines) == len(expected)
    for line, fragment in zip(lines, expected, strict=True):
        with pytest.raises(InvalidEvent) as err:
            decode_event(line)
        assert fragment in str(err.value)


def test_interleave_keeps_per_conversation_order() -> None:
    convs = list(samples.generate_conversations(30, seed=3))
    merged = samples.interleave(convs, random.Random(3))
    assert len(merged) == sum(len(c) for c in convs)
    for conv in convs:
        cid = conv[0]["conversation_id"]
        assert [e for e in merged if e["conversation_id"] == cid] == conv
