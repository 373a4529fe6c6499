"""Shared pieces of ``benchmarks.run``: input, producing, output timestamps, RSS, machine.

How time is measured (Tansu has no ``LogAppendTime``): every producer in the benchmark
(ours, aiokafka in the pipelines, Faust's, librdkafka in Quix) stamps ``CreateTime`` with
the wall clock when it hands a record to its client, and every process runs on this one
machine, so output timestamps are comparable across processes. A pipeline's span is from
its first output record to its last, over its output topics; startup (the group join) is
outside the span, as in "first to last record consumed".
"""

from __future__ import annotations

import asyncio
import math
import os
import platform
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from handoff.broker import true_end_offsets
from handoff.samples import generate_conversations, interleave

# ----------------------------------------------------------------------------- input


def make_events(n_events: int, seed: int = 7) -> list[dict[str, Any]]:
    """About ``n_events`` realistic events, interleaved, each conversation in its own order."""
    convs: list[list[dict[str, Any]]] = []
    total = 0
    # Scenarios average ~6.5 events; generate conversations until there are enough.
    for conv in generate_conversations(max(1, n_events // 3), seed=seed):
        convs.append(conv)
        total += len(conv)
        if total >= n_events:
            break
    events = interleave(convs, random.Random(seed))
    return events[:n_events]


def distinct_conversations(n: int, prefix: str) -> list[dict[str, Any]]:
    """``n`` ``conversation_started`` events of ``n`` distinct conversations."""
    template = next(iter(generate_conversations(1, seed=3)))[0]
    out = []
    for i in range(n):
        cid = f"{prefix}-{i:07d}"
        out.append({**template, "conversation_id": cid, "event_id": f"{cid}-e001"})
    return out


def encode_events(events: Iterable[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    return [(e["conversation_id"].encode(), orjson.dumps(e)) for e in events]


# ----------------------------------------------------------------------------- producing


async def produce_all(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    """Produce as fast as the client goes; returns seconds."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=512 * 1024, acks=1
    )
    await producer.start()
    t0 = time.perf_counter()
    try:
        pending = []
        for key, value in records:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - t0


async def produce_paced(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes]], rate: float
) -> dict[bytes, int]:
    """Produce at ``rate`` records/s with CreateTime = now; returns key+value -> timestamp ms."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1)
    await producer.start()
    stamps: dict[bytes, int] = {}
    try:
        t0 = time.monotonic()
        pending = []
        for i, (key, value) in enumerate(records):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing, not synchronisation
            ts = int(time.time() * 1000)
            stamps[value] = ts
            pending.append(await producer.send(topic, value, key=key, timestamp_ms=ts))
            if len(pending) >= 200:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return stamps


# ----------------------------------------------------------------------------- reading


async def edge_timestamps(bootstrap: str, topics: list[str]) -> tuple[int, int, int]:
    """(first, last, count): earliest first-record and latest last-record CreateTime (ms)."""
    first, last, count = 2**62, 0, 0
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", max_partition_fetch_bytes=64 * 1024,
    )  # fmt: skip
    await consumer.start()
    try:
        for topic in topics:
            ends = await true_end_offsets(bootstrap, topic)
            for part, end in ends.items():
                if end <= 0:
                    continue
                count += end
                tp = TopicPartition(topic, part)
                consumer.assign([tp])
                for offset in (0, end - 1):
                    consumer.seek(tp, offset)
                    rec = await _one(consumer, tp, offset)
                    first, last = min(first, rec.timestamp), max(last, rec.timestamp)
    finally:
        await consumer.stop()
    return first, last, count


async def _one(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> Any:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        batch = await consumer.getmany(tp, timeout_ms=200, max_records=50)
        for rec in batch.get(tp, []):
            if rec.offset >= offset:
                return rec
    raise TimeoutError(f"no record at {tp} offset {offset}")


async def all_timestamps(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes, int]]:
    """Every (key, value, timestamp ms) of ``topic`` up to its true end."""
    ends = {p: e for p, e in (await true_end_offsets(bootstrap, topic)).items() if e > 0}
    if not ends:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    out: list[tuple[bytes | None, bytes, int]] = []
    try:
        tps = [TopicPartition(topic, p) for p in ends]
        consumer.assign(tps)
        pos = dict.fromkeys(ends, 0)
        deadline = time.monotonic() + 60
        while any(pos[p] < ends[p] for p in ends) and time.monotonic() < deadline:
            for tp, recs in (await consumer.getmany(timeout_ms=200)).items():
                for rec in recs:
                    if rec.offset < ends[tp.partition]:
                        out.append((rec.key, rec.value or b"", rec.timestamp))
                    pos[tp.partition] = rec.offset + 1
    finally:
        await consumer.stop()
    return out


# ----------------------------------------------------------------------------- process facts


def vm_kb(pid: int | str, field: str = "VmHWM") -> int | None:
    """A ``/proc/PID/status`` figure in kB (``VmHWM`` is the peak resident set)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def tree_hwm_mb(pid: int) -> float | None:
    """Peak RSS of a process in MB (children not included)."""
    kb = vm_kb(pid)
    return round(kb / 1024, 1) if kb else None


@dataclass
class Machine:
    nproc: int
    ram_gb: float
    cpu: str
    loadavg_start: tuple[float, float, float]

    @classmethod
    def describe(cls) -> Machine:
        cpu = platform.processor() or "unknown"
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        cpu = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        ram_kb = 0
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    ram_kb = int(line.split()[1])
        return cls(os.cpu_count() or 0, round(ram_kb / 1024 / 1024, 1), cpu, os.getloadavg())


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
