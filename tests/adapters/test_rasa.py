"""Rasa tracker events -> contract events, and the bridge's dead letters."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from handoff.adapters.bridge import Record, bridge_records
from handoff.adapters.rasa import translate, translate_bytes
from handoff.core.decide import apply_event
from handoff.core.policy import load_policy
from handoff.exceptions import InvalidEvent
from handoff.streams.codec import decode_event, encode
from handoff.worker import DEFAULT_POLICY

SAMPLES = Path(__file__).parent / "samples"


def lines(name: str) -> list[bytes]:
    return [ln for ln in (SAMPLES / name).read_bytes().splitlines() if ln.strip()]


def good() -> list[dict[str, Any]]:
    return [orjson.loads(ln) for ln in lines("rasa_tracker_events.jsonl")]


def test_sample_conversation_translates_in_order() -> None:
    out = [e for rec in good() for e in translate(rec)]
    assert [e.type for e in out] == [
        "conversation_started",
        "customer_message",
        "bot_message",
        "customer_message",
        "identity_captured",
        "bot_message",
        "customer_message",
        "handoff_requested",
        "handoff_requested",
        "bot_message",
        "conversation_closed",
    ]
    assert {e.conversation_id for e in out} == {"rasa-conv-1"}
    assert len({e.event_id for e in out}) == len(out)


def test_user_message_carries_intent_confidence_and_entities() -> None:
    (msg,) = translate(good()[3])
    assert msg.type == "customer_message"
    assert msg.text == "where is my order A-1001?"
    assert msg.nlu.intent == "shipping_delay"
    assert msg.nlu.confidence == 0.91
    assert msg.nlu.entities == {"order_id": "A-1001"}
    assert msg.occurred_at.isoformat() == "2024-06-01T10:00:01.500000+00:00"


def test_bot_steps_and_outcomes() -> None:
    asked, failed, answered = (translate(r)[0] for r in good() if r["event"] == "bot")
    assert (asked.step, asked.outcome) == ("ask_email", "asked")
    assert (failed.step, failed.outcome) == ("default", "failed")
    assert (answered.step, answered.outcome) == ("handoff", "answered")


def test_bot_without_step_asks_when_it_asks() -> None:
    base = {"sender_id": "s", "event": "bot", "timestamp": 1.0}
    assert translate({**base, "text": "Which order?"})[0].outcome == "asked"
    assert translate({**base, "text": "Done."})[0].outcome == "answered"


def test_identity_slot_and_ignored_slot() -> None:
    slots = [r for r in good() if r["event"] == "slot"]
    assert translate(slots[0]) == []  # order_id: an entity, carried by the user message
    (ident,) = translate(slots[1])
    assert ident.type == "identity_captured"
    assert ident.identity.email == "ana@example.com" and ident.verified is False


def test_event_ids_are_deterministic_and_named() -> None:
    first = [e.event_id for r in good() for e in translate(r)]
    again = [e.event_id for r in good() for e in translate(r)]
    assert first == again
    assert first[0] == "rasa:rasa-conv-1:1717236000.102:session_started:0"
    assert "rasa:rasa-conv-1:1717236010.1:slot:email:0" in first


def test_long_sender_keeps_event_id_within_limit() -> None:
    rec = {"sender_id": "x" * 128, "event": "restart", "timestamp": 1.0}
    (ev,) = translate(rec)
    assert len(ev.event_id) <= 128 and ev.event_id.startswith("rasa:")


def test_translations_are_valid_wire_records() -> None:
    for rec in good():
        for ev in translate(rec):
            wire = encode(ev)
            assert decode_event(wire, ev.conversation_id.encode()) == ev


def test_core_escalates_the_sample_once_with_human_requested() -> None:
    policy = load_policy(DEFAULT_POLICY)
    state = None
    escalations = []
    for ev in (e for rec in good() for e in translate(rec)):
        decision = apply_event(state, ev, ev.occurred_at, policy)
        state = decision.state
        if decision.escalated:
            escalations.append(ev.type)
        assert not decision.duplicate
    assert escalations  # the handoff intent reached the core as handoff_requested
    assert state is not None and "human_requested" in state.reasons


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (0, "field 'rasa.sender_id' is required"),
        (1, "field 'rasa.timestamp' is required"),
        (2, "field 'rasa.event' has unknown value 'teleport'"),
        (3, "invalid customer_message: 'nlu.confidence' Input should be less than or equal to 1"),
        (4, "field 'rasa.name' is required"),
        (5, "field 'value' is not valid JSON"),
    ],
)
def test_bad_records_name_the_field(index: int, message: str) -> None:
    with pytest.raises(InvalidEvent, match=message.replace("(", r"\(").replace(".", r"\.")):
        translate_bytes(lines("rasa_bad_events.jsonl")[index])


def test_tombstone_and_non_object() -> None:
    with pytest.raises(InvalidEvent, match="tombstone"):
        translate_bytes(None)
    with pytest.raises(InvalidEvent, match="must be a JSON object, got list"):
        translate_bytes(b"[1]")


class FakeSink:
    """Records what the bridge produced, like a producer whose sends are acknowledged."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes) -> Any:
        self.sent.append((topic, key, value))

        async def ack() -> None:
            return None

        return ack()


async def test_bridge_sends_events_keyed_and_dead_letters_the_rest() -> None:
    records = [
        Record("rasa_core_events", 0, i, b"rasa-conv-1", v)
        for i, v in enumerate(lines("rasa_tracker_events.jsonl") + lines("rasa_bad_events.jsonl"))
    ]
    sink = FakeSink()
    stats = await bridge_records(
        records, sink.send, events_topic="conversation-events", dead_letters_topic="dead-letters"
    )
    assert (stats.records, stats.events, stats.dead_letters) == (21, 11, 6)
    events = [s for s in sink.sent if s[0] == "conversation-events"]
    assert all(k == b"rasa-conv-1" for _, k, _ in events)
    dead = [orjson.loads(v) for t, _, v in sink.sent if t == "dead-letters"]
    assert [d["offset"] for d in dead] == [15, 16, 17, 18, 19, 20]
    assert dead[2]["error"] == "field 'rasa.event' has unknown value 'teleport'"
    assert base64.b64decode(dead[5]["value"]) == b"not json at all"
    assert all(d["source_topic"] == "rasa_core_events" for d in dead)
