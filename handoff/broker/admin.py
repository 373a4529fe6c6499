"""Kafka-protocol helpers for the embedded broker: readiness, topics, true end offsets."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterable, Mapping
from typing import Any, TypeVar

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from handoff.exceptions import BrokerError

_T = TypeVar("_T")


async def answers_metadata(bootstrap: str, timeout: float = 1.0) -> bool:
    """True if an aiokafka client can bootstrap (ApiVersions + Metadata) within ``timeout``."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        return True
    except (TimeoutError, KafkaError, OSError):
        return False
    finally:
        await client.close()


async def create_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = 1,
    config: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> None:
    """Create topics (existing ones are fine) and wait until metadata shows every partition.

    Raises :class:`BrokerError` if the broker refuses a topic or the partitions are
    not all visible with a leader before ``timeout``.
    """
    wanted = list(names)
    deadline = time.monotonic() + timeout
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        new = [NewTopic(n, partitions, 1, topic_configs=dict(config or {})) for n in wanted]
        response = await admin.create_topics(new, timeout_ms=int(timeout * 1000))
        for name, code, *rest in response.topic_errors:
            error = for_code(code)
            if code and error is not TopicAlreadyExistsError:
                raise BrokerError(f"cannot create topic {name!r}: {error.__name__} {rest}")
        delay = 0.01
        while True:
            described = await admin.describe_topics(wanted)
            missing = [n for n in wanted if not _ready(described, n, partitions)]
            if not missing:
                return
            if time.monotonic() >= deadline:
                raise BrokerError(f"topics not visible after {timeout:.1f}s: {missing}")
            await asyncio.sleep(delay)  # polling interval
            delay = min(delay * 2, 0.2)
    finally:
        await admin.close()


def _ready(described: list[Any], name: str, partitions: int) -> bool:
    for topic in described:
        if topic["topic"] == name and topic["error_code"] == 0:
            live = [p for p in topic["partitions"] if p["leader"] >= 0]
            return len(live) >= partitions
    return False


def create_topics_sync(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = 1,
    config: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> None:
    """Blocking :func:`create_topics`, callable with or without a running event loop."""
    run_sync(create_topics(bootstrap, names, partitions=partitions, config=config, timeout=timeout))


async def true_end_offsets(
    bootstrap: str, topic: str, *, timeout: float = 10.0, poll: float = 0.2
) -> dict[int, int]:
    """The real end offset (next offset to be written) of every partition of ``topic``.

    Tansu answers ``ListOffsets(latest)`` with the base offset of the last record
    batch plus one, so ``consumer.end_offsets()`` undercounts whenever the last batch
    holds more than one record. Fetch responses do carry the right high watermark.
    So, per partition: seek to ``reported - 1`` (the start of the last batch under
    the quirk, the last record if the quirk is ever fixed), fetch, and take the high
    watermark of the fetch response, never less than last fetched offset + 1. If the
    reported offset is past the log, the consumer resets to the earliest record and
    still sees the high watermark. Empty partitions answer 0.

    Records produced while this runs may or may not be counted: the answer is a
    snapshot. Raises :class:`BrokerError` if a partition's fetch never answers
    before ``timeout``.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=int(poll * 1000),
    )
    await consumer.start()
    try:
        parts = await _partitions(consumer, topic, timeout)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        reported = await consumer.end_offsets(tps)
        begin = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(begin[tp], reported[tp] - 1))
        fetched: dict[TopicPartition, int] = {}
        deadline = time.monotonic() + timeout
        while any(consumer.highwater(tp) is None for tp in tps):
            if time.monotonic() >= deadline:
                pending = [tp.partition for tp in tps if consumer.highwater(tp) is None]
                raise BrokerError(f"no fetch answer for {topic} partitions {pending}")
            batch = await consumer.getmany(timeout_ms=int(poll * 1000))
            for tp, records in batch.items():
                if records:
                    fetched[tp] = max(fetched.get(tp, 0), records[-1].offset + 1)
        return {tp.partition: max(consumer.highwater(tp) or 0, fetched.get(tp, 0)) for tp in tps}
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str, timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while True:
        await consumer.topics()  # forces a metadata refresh
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return set(parts)
        if time.monotonic() >= deadline:
            raise BrokerError(f"topic {topic!r} not found on {consumer._client.hosts}")
        await asyncio.sleep(0.05)  # polling interval


def run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion from sync code, even when a loop is running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # asyncio.run refuses to nest; a private thread gets its own loop.
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="handoff-broker-sync", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]
