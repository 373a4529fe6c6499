"""``handoff rasa``: consume a Rasa event-broker topic, produce contract events.

At least once: offsets are committed only after every translation and dead letter of a
batch is acknowledged. A re-consumed record yields the same event ids (see
``handoff.adapters.rasa``), which the processor ignores, so redelivery changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from handoff.adapters.rasa import translate_bytes
from handoff.exceptions import InvalidEvent
from handoff.settings import Settings
from handoff.streams.codec import dead_letter, encode

log = logging.getLogger(__name__)

Send = Callable[[str, bytes | None, bytes], Awaitable[Any]]


@dataclass
class BridgeStats:
    records: int = 0
    events: int = 0
    dead_letters: int = 0


@dataclass(frozen=True)
class Record:
    """The parts of a Kafka record the bridge reads (aiokafka's ConsumerRecord has them)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


async def bridge_records(
    records: Iterable[Any], send: Send, *, events_topic: str, dead_letters_topic: str
) -> BridgeStats:
    """Translate and send a batch; return what was sent. ``send`` returns an ack awaitable."""
    stats = BridgeStats()
    acks = []
    for rec in records:
        stats.records += 1
        try:
            events = translate_bytes(rec.value)
        except InvalidEvent as exc:
            dl = dead_letter(
                source_topic=rec.topic,
                partition=rec.partition,
                offset=rec.offset,
                key=rec.key,
                value=rec.value,
                error=str(exc),
            )
            acks.append(await send(dead_letters_topic, rec.key, encode(dl)))
            stats.dead_letters += 1
            continue
        for event in events:
            key = event.conversation_id.encode("utf-8")
            acks.append(await send(events_topic, key, encode(event)))
            stats.events += 1
    for ack in acks:
        await ack
    return stats


async def run_bridge(
    settings: Settings,
    rasa_topic: str,
    *,
    group_id: str | None = None,
    stop: asyncio.Event | None = None,
) -> BridgeStats:
    """Run until ``stop`` is set (or forever); return the totals."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from handoff.kafka_security import kafka_security

    security = kafka_security(settings).aiokafka_kwargs()
    consumer = AIOKafkaConsumer(
        rasa_topic,
        bootstrap_servers=settings.bootstrap,
        group_id=group_id or f"{settings.app_id}-rasa",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **security,
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all", **security)
    total = BridgeStats()
    names = settings.topics

    async def send(topic: str, key: bytes | None, value: bytes) -> Any:
        return await producer.send(topic, value=value, key=key)

    await producer.start()
    await consumer.start()
    try:
        while stop is None or not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            if not batches:
                continue
            records = [r for part in batches.values() for r in part]
            stats = await bridge_records(
                records, send, events_topic=names.events, dead_letters_topic=names.dead_letters
            )
            await consumer.commit()
            total.records += stats.records
            total.events += stats.events
            total.dead_letters += stats.dead_letters
            log.info(
                "rasa_batch records=%d events=%d dead_letters=%d",
                stats.records,
                stats.events,
                stats.dead_letters,
            )
    finally:
        await consumer.stop()
        await producer.stop()
    return total
