"""Batch mode (``HANDOFF_BATCH_SIZE`` > 1): overlay ordering, write context, ack order."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from faust.streams import current_event

from handoff.agents.batch import BatchProcessor, Overlay
from handoff.agents.processor import Processor
from handoff.app import create_processor_app
from handoff.settings import Settings
from handoff.streams.topics import TopicNames
from handoff.tables.conversations import ConversationTable
from handoff.tables.metrics import MetricsTable
from handoff.worker import DEFAULT_POLICY, load_policy

ROOT = Path(__file__).resolve().parents[2]
TOPICS = TopicNames()
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _events(conversation: str) -> list[bytes]:
    lines = (ROOT / "handoff" / "data" / "sample_conversations.jsonl").read_bytes().splitlines()
    return [x for x in lines if orjson.loads(x)["conversation_id"] == conversation]


@dataclass
class FakeMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float = 0.0


class FakeEvent:
    def __init__(self, message: FakeMessage) -> None:
        self.message = message


class ChangelogTable(dict[bytes, bytes]):
    """A dict that records, per write, the partition of Faust's current event (None if none)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[bytes, int | None]] = []

    def _partition(self) -> int | None:
        ev = current_event()
        return None if ev is None else ev.message.partition

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes.append((key, self._partition()))
        super().__setitem__(key, value)

    def __delitem__(self, key: bytes) -> None:
        self.writes.append((key, self._partition()))
        super().__delitem__(key)

    def pop(self, key: bytes, default: Any = None) -> Any:
        if key in self:
            self.writes.append((key, self._partition()))
        return super().pop(key, default)


class Harness:
    def __init__(self) -> None:
        self.conv_table, self.metric_table = ChangelogTable(), ChangelogTable()
        self.conv, self.rows = Overlay(self.conv_table), Overlay(self.metric_table)
        self.log: list[str] = []  # "send:<topic>", "ack", in order
        self.unacked = 0

        async def send(topic: str, key: bytes, value: bytes) -> None:
            raise AssertionError("batch mode must not use the per-record send")

        async def produce(topic: str, key: bytes, value: bytes) -> Any:
            self.log.append(f"send:{topic}")
            self.unacked += 1
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            def ack() -> None:
                self.unacked -= 1
                self.log.append("ack")
                fut.set_result(None)

            asyncio.get_running_loop().call_later(0.01, ack)
            return fut

        self.processor = Processor(
            table=ConversationTable(self.conv),
            policy=load_policy(DEFAULT_POLICY),
            topics=TOPICS,
            send=send,
            max_event_bytes=1 << 20,
            clock=lambda: NOW,
        )
        self.batch = BatchProcessor(
            processor=self.processor,
            conversations=self.conv,
            metrics=MetricsTable(self.rows),
            metric_rows=self.rows,
            produce=produce,
        )

    def sent(self) -> int:
        return sum(x.startswith("send:") for x in self.log)


def _batch(items: list[tuple[int, bytes, bytes]]) -> list[Any]:
    return [
        FakeEvent(FakeMessage(TOPICS.events, p, off, k, v, 0.0))
        for off, (p, k, v) in enumerate(items)
    ]


async def test_events_of_one_conversation_in_one_batch_see_each_other() -> None:
    h = Harness()
    # conv-7-000004 escalates at its first message (a refund); every later event updates
    # the same ticket. All of it in one batch: each decision must see the earlier ones.
    events = _events("conv-7-000004")
    other = _events("conv-7-000000")
    cid = b"conv-7-000004"
    batch = [(2, cid, v) for v in events] + [(1, b"conv-7-000000", v) for v in other]
    decisions = await h.batch.handle(_batch(batch))
    assert all(d is not None and not d.duplicate for d in decisions)
    state = ConversationTable(h.conv_table).get(cid)
    assert state is not None
    assert len(state.applied_ids) == len(events)
    assert state.escalated and state.intent == "refund"
    # One state write per conversation, however many of its events the batch held.
    assert [k for k, _ in h.conv_table.writes].count(cid) == 1
    # The same inputs one at a time give the same state and commands.
    one = Harness()
    for item in _batch(batch):
        await one.batch.handle([item])
    assert ConversationTable(one.conv_table).raw(cid) == ConversationTable(h.conv_table).raw(cid)
    assert one.sent() == h.sent() > 0
    # A redelivered batch (a crash before its offsets were committed) changes nothing.
    writes, sent = len(h.conv_table.writes), h.sent()
    again = await h.batch.handle(_batch(batch))
    assert all(d is not None and d.duplicate for d in again)
    assert h.sent() == sent
    assert len(h.conv_table.writes) == writes


async def test_every_write_happens_in_the_context_of_its_input_partition() -> None:
    h = Harness()
    convs = {"conv-7-000004": 3, "conv-7-000000": 0, "conv-7-000001": 1}
    batch = [(p, c.encode(), v) for c, p in convs.items() for v in _events(c)]
    batch.append((2, b"conv-x", b"\xff\xfe not utf-8"))  # a dead letter: metrics of p 2
    await h.batch.handle(_batch(batch))
    assert current_event() is None  # the context is reset after each write
    for key, partition in h.conv_table.writes:
        assert partition == convs[key.decode()]
    assert {k.decode() for k, _ in h.conv_table.writes} == set(convs)
    for key, partition in h.metric_table.writes:
        text = key.decode()
        if text.startswith("sla:"):
            assert partition == convs[text[4:]]
        else:  # t:{p}, m:{p}:..., h:{p}:...
            assert partition == int(text.split(":")[1])
    assert {k for k, _ in h.metric_table.writes} >= {b"t:0", b"t:1", b"t:2", b"t:3"}


async def test_all_records_are_acknowledged_before_any_state_is_written() -> None:
    h = Harness()
    order: list[str] = []

    class Watch(ChangelogTable):
        def __setitem__(self, key: bytes, value: bytes) -> None:
            order.append(f"write unacked={h.unacked}")
            super().__setitem__(key, value)

    h.conv._table = Watch()
    await h.batch.handle(_batch([(0, b"conv-7-000004", v) for v in _events("conv-7-000004")]))
    assert h.sent() > 1
    assert order == ["write unacked=0"]
    first_ack = h.log.index("ack")
    assert all(x.startswith("send:") for x in h.log[:first_ack])  # sent together, then acks


async def test_a_failed_send_is_retried_in_place_and_state_waits_for_it() -> None:
    h = Harness()
    fails = 2
    seen_state: list[int] = []

    async def flaky(topic: str, key: bytes, value: bytes) -> Any:
        nonlocal fails
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        h.log.append(f"send:{topic}")
        if fails and topic == TOPICS.ticket_commands:
            fails -= 1
            seen_state.append(len(h.conv_table))
            fut.set_exception(RuntimeError("broker gone"))
        else:
            fut.set_result(None)
        return fut

    h.batch.produce = flaky
    events = _events("conv-7-000004")
    decisions = await h.batch.handle(_batch([(0, b"conv-7-000004", v) for v in events]))
    assert seen_state == [0, 0]  # nothing written while the sends failed
    assert all(d is not None and not d.duplicate for d in decisions)
    state = ConversationTable(h.conv_table).get(b"conv-7-000004")
    assert state is not None and len(state.applied_ids) == len(events)
    assert [k for k, _ in h.conv_table.writes] == [b"conv-7-000004"]  # written once
    # The whole batch's records were produced three times (two failures, one success).
    one = Harness()
    await one.batch.handle(_batch([(0, b"conv-7-000004", v) for v in events]))
    assert h.sent() == 3 * one.sent()
    assert h.processor.counters == one.processor.counters  # decided once


async def test_agent_in_batch_mode_on_the_memory_store(tmp_path: Path) -> None:
    settings = Settings(
        broker="kafka://127.0.0.1:1",  # never contacted: test_context uses memory channels
        store="memory://",
        data_dir=tmp_path,
        web_enabled=False,
        batch_size=100,
        batch_within=0.01,
    )
    pa = create_processor_app(settings, load_policy(DEFAULT_POLICY))
    assert pa.batch is not None
    sent: list[tuple[str, bytes, bytes]] = []

    async def record(topic: str, key: bytes, value: bytes) -> Any:
        sent.append((topic, key, value))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    pa.batch.produce = record
    events = _events("conv-7-000004")
    async with pa.app.agents["process"].test_context() as ctx:
        for raw in events + events:  # the second round is a redelivery
            await ctx.put(raw, key=b"conv-7-000004")
        for _ in range(100):
            if pa.processor.counters.duplicates == len(events) and pa.batch.batches:
                break
            await asyncio.sleep(0.02)
    state = pa.table.get(b"conv-7-000004")
    assert state is not None
    assert len(state.applied_ids) == len(events)
    tickets = [orjson.loads(v) for t, _, v in sent if t == "ticket-commands"]
    assert sum(t["action"] == "create" for t in tickets) == 1
    assert pa.processor.counters.duplicates == len(events)
