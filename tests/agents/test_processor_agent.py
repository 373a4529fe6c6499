"""The processor's Faust agent on the memory store: Faust's own test harness, no broker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from handoff.app import create_processor_app
from handoff.settings import Settings
from handoff.worker import DEFAULT_POLICY, load_policy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def processor_app(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = Settings(
        broker="kafka://127.0.0.1:1",  # never contacted: test_context uses memory channels
        store="memory://",
        data_dir=tmp_path,
        web_enabled=False,
        batch_size=1,  # the per-event path; batch mode: tests/agents/test_batch.py
    )
    return create_processor_app(settings, load_policy(DEFAULT_POLICY))


def _events(conversation: str) -> list[bytes]:
    lines = (ROOT / "handoff" / "data" / "sample_conversations.jsonl").read_bytes().splitlines()
    return [x for x in lines if orjson.loads(x)["conversation_id"] == conversation]


async def test_agent_applies_events_and_persists_state(processor_app) -> None:  # type: ignore[no-untyped-def]
    pa = processor_app
    sent: list[tuple[str, bytes, bytes]] = []

    async def record(topic: str, key: bytes, value: bytes) -> None:
        sent.append((topic, key, value))

    pa.processor.send = record  # a fake that records, in place of the Kafka producer
    agent = pa.app.agents["process"]
    # conv-7-000004 is a refund: a risk intent that escalates at its first message.
    events = _events("conv-7-000004")
    async with agent.test_context() as ctx:
        for raw in events:
            await ctx.put(raw, key=b"conv-7-000004")
        for raw in events:  # a redelivery of every event changes nothing
            await ctx.put(raw, key=b"conv-7-000004")
    state = pa.table.get(b"conv-7-000004")
    assert state is not None
    assert len(state.applied_ids) == len(events)
    assert state.escalated and state.intent == "refund"
    tickets = [orjson.loads(v) for t, _, v in sent if t == "ticket-commands"]
    assert [t["action"] for t in tickets][:1] == ["create"]
    assert sum(t["action"] == "create" for t in tickets) == 1
    assert "risk_intent" in tickets[0]["escalation_reasons"]
    assert pa.processor.counters.duplicates == len(events)


async def test_agent_dead_letters_bad_records_and_goes_on(processor_app) -> None:  # type: ignore[no-untyped-def]
    pa = processor_app
    sent: list[tuple[str, bytes, bytes]] = []

    async def record(topic: str, key: bytes, value: bytes) -> None:
        sent.append((topic, key, value))

    pa.processor.send = record
    agent = pa.app.agents["process"]
    good = _events("conv-7-000000")
    async with agent.test_context() as ctx:
        await ctx.put(b"\xff\xfe not utf-8", key=b"conv-x")
        await ctx.put(good[0], key=b"someone-else")  # key and conversation_id disagree
        for raw in good:
            await ctx.put(raw, key=b"conv-7-000000")
    dead = [orjson.loads(v) for t, _, v in sent if t == "dead-letters"]
    assert [d["error"] for d in dead] == [
        "field 'value' is not UTF-8 (byte 0)",
        "field 'conversation_id' ('conv-7-000000') does not equal the record key ('someone-else')",
    ]
    state = pa.table.get(b"conv-7-000000")
    assert state is not None and len(state.applied_ids) == len(good)
    assert state.disposition == "resolved_by_bot"


async def test_a_failed_send_is_retried_and_the_state_waits_for_it(processor_app) -> None:  # type: ignore[no-untyped-def]
    pa = processor_app
    sent: list[tuple[str, bytes, bytes]] = []
    state_when_failing: list[object] = []
    failures = 2

    async def flaky(topic: str, key: bytes, value: bytes) -> None:
        nonlocal failures
        if failures and topic == "ticket-commands":
            failures -= 1
            state_when_failing.append(pa.table.get(b"conv-7-000004"))
            raise ConnectionError("broker gone")
        sent.append((topic, key, value))

    pa.processor.send = flaky
    events = _events("conv-7-000004")  # a refund: escalates at its first message

    def applied() -> int:
        state = pa.table.get(b"conv-7-000004")
        return 0 if state is None else len(state.applied_ids)

    async with pa.app.agents["process"].test_context() as ctx:
        for raw in events:
            await ctx.put(raw, key=b"conv-7-000004")
        deadline = asyncio.get_running_loop().time() + 10
        while applied() < len(events):  # poll with a deadline
            assert asyncio.get_running_loop().time() < deadline, state_when_failing
            await asyncio.sleep(0.02)
    # The state did not move while the create was failing: the input before it was the last.
    assert len(state_when_failing) == 2
    assert len({repr(s) for s in state_when_failing}) == 1
    before = state_when_failing[0]
    assert before is None or not before.escalated  # type: ignore[attr-defined]
    state = pa.table.get(b"conv-7-000004")
    assert state is not None and state.escalated
    tickets = [orjson.loads(v) for t, _, v in sent if t == "ticket-commands"]
    assert [t["action"] for t in tickets][:1] == ["create"]  # sent once it went through
    assert sum(t["action"] == "create" for t in tickets) == 1
