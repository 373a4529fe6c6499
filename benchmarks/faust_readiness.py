"""How long a Faust worker takes to process its first record on the embedded broker.

Run: ``.venv/bin/python -m benchmarks.faust_readiness [--runs 3] [--partitions 1] [--table]``

Each run starts a fresh worker subprocess (``python -m faust -A <app> worker
--without-web``) with a new app id (so a new consumer group), ``store='memory://'``
and ``broker_session_timeout=6`` (``--session-timeout``), against one shared
:class:`EmbeddedBroker`. One record is already waiting in the input topic at launch.
Reported per run, from the moment the process is spawned: the worker's ``Ready`` log
line, the first record seen by the agent, and how long SIGTERM takes to end the
worker. ``--table`` gives the agent a changelogged table, hence recovery too.
Worker logs stay in the printed ``workdir``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from uuid import uuid4

from aiokafka import AIOKafkaProducer

from handoff.broker import EmbeddedBroker, create_topics

APP_TEMPLATE = """
import faust

app = faust.App(
    {app_id!r},
    broker={url!r},
    store="memory://",
    broker_session_timeout={session_timeout},
    broker_heartbeat_interval={session_timeout} / 3,
    consumer_auto_offset_reset="earliest",
    topic_partitions={partitions},
    web_enabled=False,
)
source = app.topic(
    {topic!r}, key_serializer="raw", value_serializer="raw", partitions={partitions}
)
counts = app.Table("counts", default=int, partitions={partitions}) if {table} else None


@app.agent(source)
async def consume(stream):
    async for value in stream:
        if counts is not None:
            counts["seen"] += 1
        print("PROCESSED", value.decode(), flush=True)
"""


def _watch(proc: subprocess.Popen[str], t0: float, marks: dict[str, float], log: Path) -> None:
    """Read the worker's merged output, timestamp the milestones, keep the rest in a log."""
    assert proc.stdout is not None
    with log.open("w") as out:
        for line in proc.stdout:
            out.write(line)
            now = time.monotonic() - t0
            if "PROCESSED" in line:
                marks.setdefault("first_record", now)
            elif "[^Worker]: Ready" in line:
                marks.setdefault("ready", now)


async def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


def one_run(
    broker: EmbeddedBroker, workdir: Path, partitions: int, table: bool, session_timeout: float
) -> dict[str, float]:
    app_id = f"bench-{uuid4().hex[:8]}"
    topic = f"t-{uuid4().hex[:10]}"
    asyncio.run(create_topics(broker.bootstrap, [topic], partitions=partitions))
    asyncio.run(_produce(broker.bootstrap, topic, b"hello"))
    module = workdir / f"{app_id.replace('-', '_')}.py"
    module.write_text(
        textwrap.dedent(
            APP_TEMPLATE.format(
                app_id=app_id,
                url=broker.url,
                topic=topic,
                partitions=partitions,
                table=table,
                session_timeout=session_timeout,
            )
        )
    )
    env = {**os.environ, "PYTHONPATH": str(workdir)}
    argv = [sys.executable, "-m", "faust", "-A", module.stem, "worker", "-l", "info"]
    argv.append("--without-web")
    marks: dict[str, float] = {}
    t0 = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watcher = threading.Thread(target=_watch, args=(proc, t0, marks, module.with_suffix(".log")))
    watcher.start()
    try:
        deadline = time.monotonic() + float(os.environ.get("BENCH_TIMEOUT", 120))
        while "first_record" not in marks and proc.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no record processed in 120 s; see {module.with_suffix('.log')}"
                )
            time.sleep(0.05)  # polling interval
        stop_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        marks["shutdown"] = time.monotonic() - stop_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        watcher.join()
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--table", action="store_true", help="give the agent a table")
    parser.add_argument("--session-timeout", type=float, default=6.0, help="seconds")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="handoff-bench-")  # kept: worker logs live here
    print(f"workdir={tmp}", flush=True)
    with EmbeddedBroker(log_file=Path(tmp) / "tansu.log") as broker:
        results = []
        for i in range(args.runs):
            marks = one_run(broker, Path(tmp), args.partitions, args.table, args.session_timeout)
            results.append(marks)
            shown = " ".join(f"{k}={v:.2f}s" for k, v in sorted(marks.items()))
            print(f"run {i + 1}: {shown}", flush=True)
        for key in ("ready", "first_record", "shutdown"):
            values = [r[key] for r in results if key in r]
            if values:
                print(
                    f"{key}: min={min(values):.2f}s median={statistics.median(values):.2f}s "
                    f"max={max(values):.2f}s (n={len(values)})"
                )


if __name__ == "__main__":
    main()
