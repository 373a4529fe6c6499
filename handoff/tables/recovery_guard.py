"""A guard for Faust's changelog recovery against brokers that misreport end offsets.

Faust recovers a table by reading its changelog up to the "highwater" it gets from
``ListOffsets(latest)``. The embedded Tansu broker answers that with the base offset of
the *last record batch* plus one, not the end of the log, so a table would come back one
batch short (stale state: applied ``event_id`` forgotten, a ticket id missing) and a
``rocksdb://`` worker whose persisted offset is past that figure fails with
``ConsistencyError``. Fetch responses do carry the true high watermark.

``GuardedTransport`` swaps in a consumer thread whose ``_highwaters`` takes the broker's
answer and then confirms it with one fetch per partition from the start of the last batch,
keeping the larger of the two. On a correct broker (Apache Kafka) the fetch confirms the
answer, so the guard costs one small fetch per recovered partition and changes nothing.

``GuardedRecovery`` makes a takeover safe when a worker's local rocksdb store is *ahead*
of the changelog (its persisted offset is past the changelog's end): Faust would stop the
worker with ``ConsistencyError``; here the partition's local store is emptied and rebuilt
from the changelog, which is what every other worker sees. A store gets ahead when the
end offset is under-reported (the guard's confirming fetch gave up, or ran without it),
and whenever a data dir outlives its broker (the embedded broker keeps topics in memory).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition as AioTP
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode import Service

log = logging.getLogger(__name__)


async def fetched_highwaters(
    bootstrap: list[str] | str, reported: Mapping[TP, int], *, timeout: float = 10.0
) -> dict[TP, int]:
    """Confirm each reported end offset with a fetch; return the larger of the two."""
    nonempty = {tp: off for tp, off in reported.items() if off and off > 0}
    result = {tp: int(off or 0) for tp, off in reported.items()}
    if not nonempty:
        return result
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        tps = {tp: AioTP(tp.topic, tp.partition) for tp in nonempty}
        consumer.assign(list(tps.values()))
        for tp, atp in tps.items():
            consumer.seek(atp, nonempty[tp] - 1)
        seen: dict[AioTP, int] = {}
        deadline = time.monotonic() + timeout
        while any(consumer.highwater(a) is None for a in tps.values()):
            if time.monotonic() >= deadline:
                log.warning("recovery guard: no fetch answer; keeping the broker's offsets")
                break
            batch = await consumer.getmany(timeout_ms=100)
            for atp, records in batch.items():
                if records:
                    seen[atp] = max(seen.get(atp, 0), records[-1].offset + 1)
        for tp, atp in tps.items():
            true_end = max(consumer.highwater(atp) or 0, seen.get(atp, 0), nonempty[tp])
            if true_end != nonempty[tp]:
                log.info(
                    "recovery guard: %s[%d] end offset %d reported, %d fetched",
                    tp.topic,
                    tp.partition,
                    nonempty[tp],
                    true_end,
                )
            result[tp] = true_end
        return result
    finally:
        await consumer.stop()


FETCH_MAX_WAIT_MS = 50
"""Faust hard-codes ``fetch_max_wait_ms=1500``; the embedded broker holds a fetch that long
when a partition has nothing new, which put 0.65 s (p50) / 1.75 s (p99) between an event's
append and its command's at half of the maximum rate (``make bench``)."""


class GuardedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the fetcher starts
        return consumer

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        reported = await super()._highwaters(partitions)
        if self.consumer.in_transaction:
            return reported
        transport: Any = self.transport
        servers = faust_aiokafka.server_list(transport.url, transport.default_port)
        return await fetched_highwaters(servers, dict(reported))


class GuardedConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with three fixes for recovery on this broker.

    1. ``_highwaters`` confirmed by a fetch (see the module docstring).
    2. Recovery resumes the stream partitions and only *then* seeks them to their
       committed offsets. Records fetched in that window reach the stream while flow is
       still suspended: their callbacks are cancelled but the read offset moves on, so
       some events were never processed (seen: ``event_id``s missing from the table after
       a restart) and the gap they left kept the commit offset stuck forever (seen: lag
       never reaching zero). Here the resume waits until the seek is done.
    3. Offset jumps on stream partitions are fetched again, never committed unprocessed
       (see ``getmany``).
    4. A commit stalled behind offsets that never reached the stream fetches them again
       (see ``_new_offset``).
    """

    _resume_after_seek: set[TP] | None = None
    _jumps: dict[tuple[TP, int], int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._jumps = {}
        self._reseeking: set[TP] = set()
        self._idle: dict[TP, int] = {}
        self._reseeks: set[asyncio.Future[None]] = set()

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return GuardedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def resume_partitions(self, tps: Any) -> None:
        tps = set(tps)
        changelogs = {tp for tp in tps if self._is_changelog_tp(tp)}
        if changelogs:  # recovery reads these at once; no seek follows
            super().resume_partitions(changelogs)
        streams = tps - changelogs
        if streams:
            self._resume_after_seek = (self._resume_after_seek or set()) | streams

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Any]]:
        """Faust's record loop, minus offset jumps on stream partitions.

        Faust treats a jump in a partition's offsets as a gap (meant for compacted topics
        and transaction markers) and commits it as processed. A batch fetched before a
        seek (a rebalance, recovery) can arrive after it, ahead of the new read offset:
        the records in between were then never processed, yet committed (seen in a chaos
        run: 94 events lost after kills and a rebalance). Here such a jump on a stream
        partition seeks back to the read offset and drops the rest of that partition's
        batch, so the skipped records are fetched and processed. A jump seen twice at the
        same offset is a real hole in the log and is left to Faust.
        """
        jumped: set[TP] = set()
        async for tp, message in super().getmany(timeout):
            if tp in jumped:
                continue
            read = self._read_offset.get(tp)
            if read is not None and message.offset - read > 1 and not self._is_changelog_tp(tp):
                seen = self._jumps.setdefault((tp, read), 0)
                if seen < 1 and not self.in_transaction:
                    self._jumps[(tp, read)] = seen + 1
                    log.warning(
                        "offset jump %s[%d] %d -> %d: records fetched before a seek; "
                        "fetching again from %d",
                        tp.topic,
                        tp.partition,
                        read,
                        message.offset,
                        read,
                    )
                    await self.seek(tp, read)
                    jumped.add(tp)
                    continue
                log.warning(
                    "offset gap %s[%d] %d..%d seen again: a hole in the log, left to Faust",
                    tp.topic,
                    tp.partition,
                    read + 1,
                    message.offset - 1,
                )
            yield tp, message

    def _new_offset(self, tp: TP) -> int | None:
        """Faust's next commit offset, plus a way out of a stalled commit.

        Faust commits nothing for a partition whose lowest acknowledged offset is more
        than one past the committed offset: it waits for the offsets in between, which
        were never delivered to the stream (seen after a restart with a backlog: every
        event processed, the commit stuck at the old offset forever). When that happens
        the partition is fetched again from the committed offset: the missing records are
        processed, the rest are duplicates that the processor ignores by ``event_id``,
        and the commit moves on.
        """
        offset: int | None = super()._new_offset(tp)
        if offset is None and not self._is_changelog_tp(tp):
            acked = self._acked[tp]
            committed = self._committed_offset[tp]
            stalled = acked and committed is not None and min(acked) - committed > 1
            if stalled and committed is not None and tp not in self._reseeking:
                self._reseeking.add(tp)
                log.warning(
                    "commit stalled %s[%d]: offsets %d..%d never reached the stream; "
                    "fetching again from %d",
                    tp.topic,
                    tp.partition,
                    committed,
                    min(acked) - 1,
                    committed,
                )
                fut = asyncio.ensure_future(self._reseek(tp, committed))
                self._reseeks.add(fut)  # keep a reference until it is done
                fut.add_done_callback(self._reseeks.discard)
        return offset

    @Service.timer(5.0)
    async def _unstick(self) -> None:
        """Fetch again a stream partition whose backlog never reaches the stream.

        Seen after a restart with a backlog: records fetched while a partition was not yet
        active in Faust are dropped by Faust's fetch loop, but the fetch position has moved
        past them, so the partition delivers nothing and commits nothing, forever. A
        partition that has records past its committed offset, delivered none and
        acknowledged none on two checks in a row (5 s apart) is sought back to its
        committed offset.
        """
        if not self.flow_active:
            return  # recovery or a rebalance in progress
        for tp in list(self._active_partitions or ()):
            committed = self._committed_offset.get(tp)
            highwater = self.highwater(tp)
            read = self._read_offset.get(tp)
            stuck = (
                not self._is_changelog_tp(tp)
                and committed is not None
                and highwater is not None
                and highwater > committed
                and not self._acked.get(tp)
                and (read is None or read <= committed)
            )
            if not stuck or committed is None:
                self._idle.pop(tp, None)
            elif self._idle.get(tp) != committed:
                self._idle[tp] = committed
            elif tp not in self._reseeking:
                del self._idle[tp]
                self._reseeking.add(tp)
                log.warning(
                    "partition %s[%d] delivers nothing from %d (end %d); fetching again",
                    tp.topic,
                    tp.partition,
                    committed,
                    highwater,
                )
                await self._reseek(tp, committed)

    async def _reseek(self, tp: TP, offset: int) -> None:
        try:
            await self.seek(tp, offset)
        finally:
            self._reseeking.discard(tp)

    async def perform_seek(self) -> None:
        await super().perform_seek()
        pending, self._resume_after_seek = self._resume_after_seek, None
        if pending:
            super().resume_partitions(pending)


class GuardedTransport(faust_aiokafka.Transport):
    Consumer = GuardedConsumer


def reset_partition(store: Any, partition: int) -> int:
    """Empty one partition of a local store (rocksdb); return how many keys it held.

    The persisted changelog offset is a key of that partition's db, so it goes too and
    recovery reads the changelog from its start.
    """
    db = store._db_for_partition(partition)
    keys = list(db.keys())
    for key in keys:
        del db[key]
    index = getattr(store, "_key_index", None)
    if index is not None:
        index.clear()  # a cache of key -> partition; rebuilt on demand
    return len(keys)


class GuardedRecovery(Recovery):
    """Recovery that rebuilds a partition whose local store is past the changelog's end."""

    async def _build_offsets(self, consumer: Any, tps: Any, destination: Any, title: str) -> None:
        await super()._build_offsets(consumer, tps, destination, title)
        ahead = {tp for tp in tps if destination.get(tp) is not None and destination[tp] >= 0}
        if not ahead:
            return
        highwaters = await consumer.highwaters(*ahead)
        for tp in ahead:
            last = (highwaters.get(tp) or 0) - 1  # Faust's offsets are "last record read"
            if destination[tp] <= last:
                continue
            table: Any = self.tp_to_table[tp]
            dropped = reset_partition(table.data, tp.partition)
            log.warning(
                "recovery guard: %s[%d] local store at offset %d is past the changelog's "
                "last offset %d (%s); dropped %d local keys, rebuilding from the changelog",
                tp.topic,
                tp.partition,
                destination[tp],
                last,
                title,
                dropped,
            )
            destination[tp] = -1


class GuardedTableManager(TableManager):
    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = GuardedRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


class GuardedApp(faust.App):
    """A Faust app whose consumer transport and table recovery carry the guards."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("TableManager", GuardedTableManager)
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return GuardedTransport(self.conf.broker_consumer, self)


__all__ = [
    "GuardedApp",
    "GuardedRecovery",
    "GuardedTableManager",
    "GuardedTransport",
    "fetched_highwaters",
    "reset_partition",
]
