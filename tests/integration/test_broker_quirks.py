"""Pins Tansu's ListOffsets(latest) quirk, and checks that true_end_offsets sees past it.

Tansu answers ListOffsets(latest) with the base offset of the *last record batch*
plus one, not the log end; the high watermark in fetch responses is right. These
tests assert the observed numbers exactly, so a Tansu upgrade that fixes (or changes)
the behaviour fails here first and tells us to revisit the Faust recovery guard.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from handoff.broker import EmbeddedBroker, true_end_offsets

pytestmark = pytest.mark.integration

TopicFactory = Callable[..., Awaitable[str]]


async def _send_batches(bootstrap: str, topic: str, partition: int, sizes: list[int]) -> None:
    """One produce request, hence one record batch, per entry of ``sizes``."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for size in sizes:
            batch = producer.create_batch()
            for i in range(size):
                assert batch.append(key=None, value=f"r{i}".encode(), timestamp=None)
            await (await producer.send_batch(batch, topic, partition=partition))
    finally:
        await producer.stop()


async def _observe(bootstrap: str, tps: list[TopicPartition]) -> dict[str, dict[int, int]]:
    """ListOffsets(latest), records fetched from the start, and the fetch high watermark."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(tps)
        reported = await consumer.end_offsets(tps)
        fetched = dict.fromkeys(tps, 0)
        deadline = time.monotonic() + 10
        # Drain until a fetch shows us at the high watermark on every partition.
        while time.monotonic() < deadline and not await _at_highwater(consumer, tps):
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                fetched[tp] += len(records)
        return {
            "list_offsets": {tp.partition: reported[tp] for tp in tps},
            "fetched": {tp.partition: fetched[tp] for tp in tps},
            "highwater": {tp.partition: consumer.highwater(tp) or 0 for tp in tps},
        }
    finally:
        await consumer.stop()


async def _at_highwater(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
    for tp in tps:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True


async def test_list_offsets_reports_start_of_last_batch_plus_one(
    broker: EmbeddedBroker, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory(partitions=4)
    await _send_batches(broker.bootstrap, topic, 0, [10, 10, 10])
    await _send_batches(broker.bootstrap, topic, 1, [7])
    await _send_batches(broker.bootstrap, topic, 2, [1, 1, 1, 1, 1])
    # partition 3 stays empty

    seen = await _observe(broker.bootstrap, [TopicPartition(topic, p) for p in range(4)])

    assert seen["fetched"] == {0: 30, 1: 7, 2: 5, 3: 0}
    assert seen["highwater"] == {0: 30, 1: 7, 2: 5, 3: 0}
    # The quirk: base offset of the last batch + 1. Single-record batches hide it.
    assert seen["list_offsets"] == {0: 21, 1: 1, 2: 5, 3: 0}


async def test_true_end_offsets_finds_the_real_end(
    broker: EmbeddedBroker, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory(partitions=4)
    await _send_batches(broker.bootstrap, topic, 0, [10, 10, 10])
    await _send_batches(broker.bootstrap, topic, 1, [7])
    await _send_batches(broker.bootstrap, topic, 2, [1, 1, 1, 1, 1])

    assert await true_end_offsets(broker.bootstrap, topic) == {0: 30, 1: 7, 2: 5, 3: 0}

    await _send_batches(broker.bootstrap, topic, 3, [3, 200])  # a batch bigger than the rest
    assert await true_end_offsets(broker.bootstrap, topic) == {0: 30, 1: 7, 2: 5, 3: 203}
