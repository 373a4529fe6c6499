"""How far a consumer group has come: committed offsets against the true end of topics.

Used by the demo, the tests and the chaos run to wait for "everything processed" by
polling with a deadline. End offsets come from fetches (see ``handoff.broker``), because
the embedded broker's ``ListOffsets`` answer undercounts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from handoff.broker import true_end_offsets


async def committed(
    bootstrap: str, group: str, partitions: list[TopicPartition]
) -> dict[tuple[str, int], int]:
    """Committed offsets of ``group`` for the given partitions (-1 where none).

    The partitions are always named: Tansu fails an OffsetFetch for "all partitions".
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
    finally:
        await admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


async def lag(bootstrap: str, group: str, topics: Iterable[str]) -> int:
    """Records in ``topics`` not yet committed by ``group`` (0 means caught up)."""
    ends = {topic: await true_end_offsets(bootstrap, topic) for topic in topics}
    tps = [TopicPartition(t, p) for t, parts in ends.items() for p in parts]
    done = await committed(bootstrap, group, tps)
    total = 0
    for topic in ends:
        for part, end in ends[topic].items():
            total += max(0, end - max(0, done.get((topic, part), 0)))
    return total


async def wait_caught_up(
    bootstrap: str,
    groups: dict[str, list[str]],
    *,
    timeout: float = 120.0,
    poll: float = 0.5,
    stable_polls: int = 2,
    check: Callable[[], None] | None = None,
) -> float:
    """Poll until every group has no lag on its topics for ``stable_polls`` polls in a row.

    Returns the seconds it took; raises TimeoutError with the remaining lag otherwise.
    ``check`` is called every poll and may raise to stop early (a worker that died).
    """
    start = time.monotonic()
    stable = 0
    last: dict[str, int] = {}
    while True:
        if check is not None:
            check()
        last = {g: await lag(bootstrap, g, ts) for g, ts in groups.items()}
        stable = stable + 1 if not any(last.values()) else 0
        if stable >= stable_polls:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"consumer groups still behind after {timeout:.0f}s: {last}")
        await asyncio.sleep(poll)  # polling interval, not synchronisation


async def read_all(bootstrap: str, topic: str, *, timeout: float = 30.0) -> list[bytes]:
    """Every record value of ``topic`` from the beginning up to its true end right now."""
    return [v or b"" for _, v in await read_all_records(bootstrap, topic, timeout=timeout)]


async def read_all_records(
    bootstrap: str, topic: str, *, timeout: float = 30.0
) -> list[tuple[bytes | None, bytes | None]]:
    """Every ``(key, value)`` of ``topic`` up to its true end, in partition then offset order."""
    return [(k, v) for _, k, v in await read_partitioned_records(bootstrap, topic, timeout=timeout)]


async def read_partitioned_records(
    bootstrap: str, topic: str, *, timeout: float = 30.0
) -> list[tuple[int, bytes | None, bytes | None]]:
    """Every ``(partition, key, value)`` of ``topic`` up to its true end, in that order."""
    ends = await true_end_offsets(bootstrap, topic)
    want = {p: e for p, e in ends.items() if e > 0}
    out: list[tuple[int, int, bytes | None, bytes | None]] = []
    if not want:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in want]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        pos = {p: 0 for p in want}
        deadline = time.monotonic() + timeout
        while any(pos[p] < want[p] for p in want):
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {pos} of {want} in {topic}")
            batch = await consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                for rec in records:
                    if rec.offset < want[tp.partition]:
                        out.append((tp.partition, rec.offset, rec.key, rec.value))
                    pos[tp.partition] = rec.offset + 1
    finally:
        await consumer.stop()
    out.sort(key=lambda r: (r[0], r[1]))
    return [(p, k, v) for p, _, k, v in out]
