"""The peer: Quix Streams doing the same stateful work (RocksDB state with a changelog).

Run as a subprocess by ``benchmarks.run``. Two things this broker needs (issue 7): Quix's
topic manager reads ``retention.ms`` from DescribeConfigs, which Tansu answers only for
configs set explicitly, so it is set first with IncrementalAlterConfigs; and
``consumer_poll_timeout`` of 0.01 s, or the last acks of a finite run arrive up to a
second late. The output timestamp is set to the wall clock (Quix would otherwise copy
the input's), so that spans are measured the same way for every pipeline.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

import orjson
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)
from quixstreams import Application, State

from benchmarks.common import vm_kb


def set_retention(bootstrap: str, topics: list[str], ms: str = "604800000") -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resources = [
        ConfigResource(
            ResourceType.TOPIC,
            t,
            incremental_configs=[
                ConfigEntry("retention.ms", ms, incremental_operation=AlterConfigOpType.SET)
            ],
        )
        for t in topics
    ]
    for fut in admin.incremental_alter_configs(resources).values():
        fut.result(timeout=10)


def count(value: bytes, state: State) -> bytes:
    event = orjson.loads(value)
    n = state.get("n", 0) + 1
    state.set("n", n)
    return orjson.dumps({"id": event["event_id"], "n": n})


def now_ms(value: Any, key: Any, timestamp: int, headers: Any) -> int:
    return int(time.time() * 1000)


def main() -> None:
    p = argparse.ArgumentParser()
    for name in ("bootstrap", "topic", "out", "group", "state-dir"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--events", type=int, required=True)
    a = p.parse_args()
    set_retention(a.bootstrap, [a.topic, a.out])
    app = Application(
        broker_address=a.bootstrap,
        consumer_group=a.group,
        auto_offset_reset="earliest",
        state_dir=a.state_dir,
        consumer_poll_timeout=0.01,
        loglevel=logging.WARNING,
        use_changelog_topics=True,
    )
    source = app.topic(a.topic, key_deserializer="bytes", value_deserializer="bytes")
    out = app.topic(a.out, key_serializer="bytes", value_serializer="bytes")
    sdf = app.dataframe(source)
    sdf = sdf.apply(count, stateful=True).set_timestamp(now_ms)
    sdf.to_topic(out)
    app.run(count=a.events, collect=False)
    sys.stdout.write(orjson.dumps({"rss_mb": (vm_kb("self") or 0) / 1024}).decode() + "\n")


if __name__ == "__main__":
    main()
