"""Handoff throughput at several ``HANDOFF_BATCH_SIZE`` values, same input, same broker.

``python -m benchmarks.batch_sweep --events 20000 --sizes 1,100,500 --rounds 3``: one
embedded broker; each run gets its own topics holding the same generated events (seed 7)
and one fresh ``handoff worker --role processor`` (rocksdb, connectors off), measured
exactly as ``benchmarks/run.py`` measures handoff (events / span of the output records).
Sizes are interleaved round by round so machine noise spreads over all of them; prints
per-run figures, the median per size, and the load average at each run's start.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import uuid
from pathlib import Path
from typing import Any

import orjson

from benchmarks.run import Bench
from handoff.broker import EmbeddedBroker
from handoff.streams.topics import TopicNames


async def sweep(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="handoff-batch-sweep-"))
    broker = EmbeddedBroker(log_file=workdir / "broker.log")
    broker.start()
    runs: list[dict[str, Any]] = []
    try:
        for rnd in range(args.rounds):
            for size in args.sizes:
                bench_args = argparse.Namespace(
                    events=args.events, partitions=args.partitions, no_latency=True,
                    batch_size=size,
                )  # fmt: skip
                bench = Bench(bench_args, broker, workdir)
                bench.run_id = uuid.uuid4().hex[:8]
                bench.names = TopicNames.with_prefix(f"b{bench.run_id}.")
                await bench.setup()
                load = os.getloadavg()
                await bench.run_handoff()
                res = bench.results["handoff"]
                run = {"round": rnd, "batch_size": size, "loadavg": load, **res}
                runs.append(run)
                print(orjson.dumps(run).decode(), flush=True)
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    medians = {
        str(size): statistics.median(r["events_per_s"] for r in runs if r["batch_size"] == size)
        for size in args.sizes
    }
    return {"events": args.events, "runs": runs, "median_events_per_s": medians}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--sizes", default="1,100,500")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    args = p.parse_args()
    args.sizes = [int(x) for x in args.sizes.split(",")]
    result = asyncio.run(sweep(args))
    text = orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
