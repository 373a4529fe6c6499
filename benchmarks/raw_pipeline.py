"""The limit for a Python pipeline here: aiokafka consume, orjson decode, dict update, produce.

Run as a subprocess by ``benchmarks.run``: reads ``--events`` records of ``--topic`` in
group ``--group``, keeps a per-key dict (the "table"), produces one output per event to
``--out``, commits after each batch, and prints one JSON line with its own figures.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.common import vm_kb


async def run(bootstrap: str, topic: str, out: str, group: str, events: int) -> dict[str, float]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
        max_poll_records=2000,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=-1)
    await consumer.start()
    await producer.start()
    state: dict[bytes, int] = {}
    seen = 0
    t_first = t_last = 0.0
    try:
        while seen < events:
            batch = await consumer.getmany(timeout_ms=100, max_records=2000)
            if not batch:
                continue
            if not t_first:
                t_first = time.time()
            futures = []
            for _tp, records in batch.items():
                for rec in records:
                    event = orjson.loads(rec.value)
                    key = rec.key or b""
                    n = state[key] = state.get(key, 0) + 1
                    value = orjson.dumps({"id": event["event_id"], "n": n})
                    futures.append(await producer.send(out, value, key=key))
                    seen += 1
            await asyncio.gather(*futures)  # outputs acknowledged before the commit
            await consumer.commit()
        t_last = time.time()
    finally:
        await producer.stop()
        await consumer.stop()
    return {"events": seen, "first": t_first, "last": t_last, "rss_mb": (vm_kb("self") or 0) / 1024}


def main() -> None:
    p = argparse.ArgumentParser()
    for name in ("bootstrap", "topic", "out", "group"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--events", type=int, required=True)
    a = p.parse_args()
    result = asyncio.run(run(a.bootstrap, a.topic, a.out, a.group, a.events))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
