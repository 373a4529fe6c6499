"""The framework's own ceiling: a bare Faust agent, one memory-table update, one output per event.

Run as a worker subprocess by ``benchmarks.run`` (``python -m benchmarks.faust_bare``),
configured by ``BENCH_*`` environment variables, with an explicit log level and no spinner
(the spinner sets the root logger to DEBUG), ``broker_session_timeout=6`` as handoff's
workers use on the embedded broker.
"""

from __future__ import annotations

import os
from typing import Any

import faust
import orjson


def build_app() -> faust.App:
    env = os.environ
    partitions = int(env.get("BENCH_PARTITIONS", "4"))
    app = faust.App(
        env["BENCH_APP_ID"],
        broker=env["BENCH_BROKER"],
        store="memory://",
        datadir=env.get("BENCH_DATA_DIR", "/tmp/faust-bare"),
        broker_session_timeout=6.0,
        broker_heartbeat_interval=2.0,
        consumer_auto_offset_reset="earliest",
        topic_partitions=partitions,
        web_enabled=False,
        producer_acks=-1,
    )
    schema = faust.Schema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    source = app.topic(env["BENCH_TOPIC"], partitions=partitions, schema=schema)
    out = app.topic(env["BENCH_OUT"], partitions=partitions, schema=schema)
    counts = app.Table("counts", default=int, partitions=partitions, key_type=bytes, value_type=int)

    @app.agent(source, name="bare")
    async def bare(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            decoded = orjson.loads(msg.value)
            n = counts[msg.key] = counts[msg.key] + 1
            await out.send(key=msg.key, value=orjson.dumps({"id": decoded["event_id"], "n": n}))

    return app


def main() -> None:
    worker = faust.Worker(build_app(), loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
