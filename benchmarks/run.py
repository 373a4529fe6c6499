"""``make bench``: handoff beside raw aiokafka, a bare Faust agent and Quix Streams, in one run.

On a fresh embedded broker, the same generated events (``--events``, default 200,000,
4 partitions) go once into one input topic; each pipeline then reads all of it in its
own consumer group, one pipeline at a time (the machine is small), each in its own
process:

1. ``raw``: aiokafka consume, orjson decode, dict update, produce, commit
   (``benchmarks/raw_pipeline.py``);
2. ``faust``: a bare Faust agent, one memory-table update and one output per event
   (``benchmarks/faust_bare.py``);
3. ``quix``: Quix Streams, the same work with RocksDB state and a changelog
   (``benchmarks/quix_pipeline.py``; needs the ``bench`` extra);
4. ``handoff``: a real ``handoff worker --role processor`` (rocksdb store, connectors off).

Throughput is events / span, the span from a pipeline's first output record to its last
(CreateTime stamped by each pipeline's own producer; see ``benchmarks/common.py``); for
handoff the outputs are the conversation changelog and the command topics. Then, with the
handoff worker still running and caught up, new conversations are produced at half of its
measured rate, stamped by our producer; the latency of a command is its timestamp minus
that of the event that caused it (the pure core, applied offline to the same events, says
which event caused which command id). Recovery: a worker builds the table of
``--recovery-conversations`` conversations, stops, and a fresh worker with an empty data
dir is timed from spawn to Faust's ``Ready`` (the recovery itself is read from its log).

Writes ``benchmarks/results/<date>.json`` and appends a row to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from benchmarks.common import (
    Machine,
    all_timestamps,
    distinct_conversations,
    edge_timestamps,
    encode_events,
    make_events,
    percentile,
    produce_all,
    produce_paced,
    tree_hwm_mb,
    vm_kb,
)
from handoff.broker import EmbeddedBroker, create_topics
from handoff.procs import WorkerProcess, all_topics, fail_if_dead, worker_env
from handoff.progress import wait_caught_up
from handoff.streams.topics import TopicNames

HERE = Path(__file__).resolve().parent
PIPELINES = ("raw", "faust", "quix", "handoff")


class Bench:
    def __init__(self, args: argparse.Namespace, broker: EmbeddedBroker, workdir: Path) -> None:
        self.args = args
        self.broker = broker
        self.bootstrap = broker.bootstrap
        self.workdir = workdir
        self.run_id = uuid.uuid4().hex[:8]
        self.names = TopicNames.with_prefix(f"b{self.run_id}.")
        self.records: list[tuple[bytes, bytes]] = []
        self.results: dict[str, Any] = {}

    def log(self, msg: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)

    async def setup(self) -> None:
        await create_topics(self.bootstrap, all_topics(self.names), partitions=self.args.partitions)
        events = make_events(self.args.events, seed=7)
        self.records = encode_events(events)
        mean = sum(len(v) for _, v in self.records) / len(self.records)
        secs = await produce_all(self.bootstrap, self.names.events, self.records)
        self.results["input"] = {
            "events": len(self.records),
            "conversations": len({k for k, _ in self.records}),
            "mean_event_bytes": round(mean),
            "partitions": self.args.partitions,
            "produce_s": round(secs, 2),
        }
        self.log(f"input: {self.results['input']}")

    async def _out_topic(self, name: str) -> str:
        topic = f"b{self.run_id}.{name}-out"
        await create_topics(self.bootstrap, [topic], partitions=self.args.partitions)
        return topic

    async def _throughput(self, topics: list[str], expected: int | None = None) -> dict[str, Any]:
        first, last, count = await edge_timestamps(self.bootstrap, topics)
        span = max(0.001, (last - first) / 1000)
        n = len(self.records)
        out: dict[str, Any] = {"span_s": round(span, 2), "events_per_s": round(n / span)}
        out["output_records"] = count
        if expected is not None and count < expected:
            out["warning"] = f"{count} outputs, expected {expected}"
        return out

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Any:
        log = (self.workdir / f"{name}.log").open("ab")
        return subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env
        )

    async def run_raw(self) -> None:
        out = await self._out_topic("raw")
        argv = [sys.executable, "-m", "benchmarks.raw_pipeline", "--bootstrap", self.bootstrap,
                "--topic", self.names.events, "--out", out, "--group", f"raw-{self.run_id}",
                "--events", str(len(self.records))]  # fmt: skip
        proc = self._spawn("raw", argv)
        stdout, _ = await asyncio.to_thread(proc.communicate, timeout=self.timeout)
        own = orjson.loads(stdout.strip().splitlines()[-1])
        res = await self._throughput([out], len(self.records))
        res["rss_mb"] = round(own["rss_mb"], 1)
        self.results["raw"] = res
        self.log(f"raw: {res}")

    async def run_faust(self) -> None:
        out = await self._out_topic("faust")
        app_id = f"faust-{self.run_id}"
        env = dict(os.environ)
        env.update(
            BENCH_BROKER=self.broker.url, BENCH_APP_ID=app_id, BENCH_TOPIC=self.names.events,
            BENCH_OUT=out, BENCH_PARTITIONS=str(self.args.partitions),
            BENCH_DATA_DIR=str(self.workdir / "faust-data"),
        )  # fmt: skip
        argv = [sys.executable, "-m", "benchmarks.faust_bare"]
        proc = self._spawn("faust", argv, env)
        try:
            await self._wait_group(app_id, [self.names.events], [proc])
            rss = tree_hwm_mb(proc.pid)
        finally:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 30)
        res = await self._throughput([out], len(self.records))
        res["rss_mb"] = rss
        self.results["faust"] = res
        self.log(f"faust: {res}")

    async def run_quix(self) -> None:
        try:
            import quixstreams  # noqa: F401
        except ImportError:
            self.log("quix: skipped (pip install -e '.[bench]')")
            return
        out = await self._out_topic("quix")
        argv = [sys.executable, "-m", "benchmarks.quix_pipeline", "--bootstrap", self.bootstrap,
                "--topic", self.names.events, "--out", out, "--group", f"quix-{self.run_id}",
                "--state-dir", str(self.workdir / "quix-state"),
                "--events", str(len(self.records))]  # fmt: skip
        proc = self._spawn("quix", argv)
        stdout, _ = await asyncio.to_thread(proc.communicate, timeout=self.timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"quix exited {proc.returncode}; see {self.workdir}/quix.log")
        own = orjson.loads(stdout.strip().splitlines()[-1])
        res = await self._throughput([out], len(self.records))
        res["rss_mb"] = round(own["rss_mb"], 1)
        self.results["quix"] = res
        self.log(f"quix: {res}")

    # -- handoff

    def _worker(self, name: str, prefix: str, data_dir: str, log_level: str = "info") -> Any:
        env = worker_env(
            self.bootstrap,
            self.workdir / data_dir,
            log_level=log_level,
            app_id=prefix.rstrip("."),
            topic_prefix=prefix,
            partitions=str(self.args.partitions),
            helpdesk="none",
            crm="none",
            store="rocksdb://",
            **({} if self.args.batch_size is None else {"batch_size": str(self.args.batch_size)}),
            **(
                {}
                if self.args.batch_within is None
                else {"batch_within": str(self.args.batch_within)}
            ),
        )
        return WorkerProcess("processor", env, self.workdir / f"{name}.log").start()

    async def _wait_group(self, group: str, topics: list[str], procs: list[Any]) -> float:
        def check() -> None:
            for p in procs:
                if isinstance(p, WorkerProcess):
                    fail_if_dead([p])
                elif p.poll() is not None:
                    raise RuntimeError(f"{group} exited with {p.returncode}")

        return await wait_caught_up(
            self.bootstrap, {group: topics}, timeout=self.timeout, check=check, poll=0.5
        )

    @property
    def timeout(self) -> float:
        return max(180.0, len(self.records) / 300)

    async def run_handoff(self) -> None:
        prefix = f"b{self.run_id}."
        worker = self._worker("handoff", prefix, "handoff-data")
        names = self.names
        try:
            await self._wait_group(
                prefix.rstrip("."), [names.events, names.connector_results], [worker]
            )
            changelog = f"{prefix.rstrip('.')}-conversations-changelog"
            res = await self._throughput([changelog, names.ticket_commands, names.crm_commands])
            res["rss_mb_after_throughput"] = tree_hwm_mb(worker.proc.pid)
            self.results["handoff"] = res
            self.log(f"handoff: {res}")
            if not self.args.no_latency:
                await self.latency(worker, res["events_per_s"] / 2)
            res["rss_mb"] = tree_hwm_mb(worker.proc.pid)
            res["worker_pid"] = worker.proc.pid
        finally:
            worker.stop()

    async def latency(self, worker: WorkerProcess, rate: float) -> None:
        from datetime import UTC, datetime

        from handoff.core.decide import apply_event
        from handoff.streams.codec import decode_event
        from handoff.worker import DEFAULT_POLICY, load_policy

        n = max(500, int(rate * self.args.latency_seconds))
        records = encode_events(make_events(n, seed=99))
        self.log(f"latency: {len(records)} events at {rate:.0f}/s")
        stamps = await produce_paced(self.bootstrap, self.names.events, records, rate)
        prefix = f"b{self.run_id}"
        await self._wait_group(prefix, [self.names.events], [worker])
        policy = load_policy(DEFAULT_POLICY)
        states: dict[str, Any] = {}
        caused_by: dict[str, int] = {}
        now = datetime.now(UTC)
        for _key, value in records:
            event = decode_event(value)
            d = apply_event(states.get(event.conversation_id), event, now, policy)
            states[event.conversation_id] = d.state
            for cmd in d.commands:
                caused_by[cmd.command_id] = stamps[value]
        lat: list[float] = []
        for topic in (self.names.ticket_commands, self.names.crm_commands):
            for _k, value, ts in await all_timestamps(self.bootstrap, topic):
                src = caused_by.get(orjson.loads(value)["command_id"])
                if src is not None:
                    lat.append(ts - src)
        self.results["latency"] = {
            "rate_per_s": round(rate),
            "events": len(records),
            "commands": len(lat),
            "commands_expected": len(caused_by),
            "p50_ms": percentile(lat, 50) if lat else None,
            "p99_ms": percentile(lat, 99) if lat else None,
            "max_ms": max(lat) if lat else None,
            "method": "command CreateTime (worker's producer) - event CreateTime (ours, at send)",
        }
        self.log(f"latency: {self.results['latency']}")

    async def recovery(self) -> None:
        k = self.args.recovery_conversations
        prefix = f"r{self.run_id}."
        names = TopicNames.with_prefix(prefix)
        await create_topics(self.bootstrap, all_topics(names), partitions=self.args.partitions)
        await produce_all(
            self.bootstrap, names.events, encode_events(distinct_conversations(k, "rc"))
        )
        builder = self._worker("recovery-build", prefix, "rec-a")
        try:
            build_s = await self._wait_group(
                prefix.rstrip("."), [names.events, names.connector_results], [builder]
            )
            live_rss = (vm_kb(builder.proc.pid, "VmRSS") or 0) / 1024
            build_hwm = tree_hwm_mb(builder.proc.pid)
        finally:
            builder.stop()
        log_path = self.workdir / "recovery-fresh.log"
        t0 = time.monotonic()
        fresh = self._worker("recovery-fresh", prefix, "rec-b")
        try:
            ready = await self._wait_log(fresh, log_path, "[^Worker]: Ready", 120)
            hwm = tree_hwm_mb(fresh.proc.pid)
            rss = (vm_kb(fresh.proc.pid, "VmRSS") or 0) / 1024
        finally:
            fresh.stop()
        spans = recovery_spans(log_path.read_text(errors="replace"))
        self.results["recovery"] = {
            "conversations": k,
            "build_s": round(build_s, 1),
            "spawn_to_ready_s": round(ready - t0, 2),
            **spans,
            "rss_mb_builder_live": round(live_rss, 1),
            "rss_peak_mb_builder": build_hwm,
            "rss_mb_fresh_after_recovery": round(rss, 1),
            "rss_peak_mb_fresh": hwm,
        }
        self.log(f"recovery: {self.results['recovery']}")

    async def _wait_log(self, w: WorkerProcess, path: Path, needle: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fail_if_dead([w])
            if path.exists() and needle in path.read_text(errors="replace"):
                return time.monotonic()
            await asyncio.sleep(0.05)  # polling interval
        raise TimeoutError(f"no {needle!r} in {path} after {timeout}s")


def recovery_spans(log: str) -> dict[str, float]:
    """Seconds between Faust's recovery log lines (``asctime`` stamps, ms resolution)."""

    def stamp(needle: str) -> dt.datetime | None:
        for line in log.splitlines():
            if needle in line:
                try:
                    return dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                except ValueError:
                    return None
        return None

    start = stamp("worker starting")
    restoring = stamp("Restoring state from changelog topics")
    done = stamp("Done reading from changelog topics") or stamp("Recovery complete")
    ready = stamp("[^Worker]: Ready")
    out: dict[str, float] = {}
    if restoring and done:
        out["changelog_read_s"] = round((done - restoring).total_seconds(), 2)
    if start and ready:
        out["log_start_to_ready_s"] = round((ready - start).total_seconds(), 2)
    return out


def ratios(results: dict[str, Any]) -> dict[str, float | None]:
    h = results.get("handoff", {}).get("events_per_s")
    out: dict[str, float | None] = {}
    for name in ("raw", "faust", "quix"):
        other = results.get(name, {}).get("events_per_s")
        out[f"ratio_to_{name}"] = round(h / other, 3) if h and other else None
    return out


def write_results(results: dict[str, Any], machine: Machine) -> Path:
    today = dt.date.today().isoformat()
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"{today}.json"
    if path.exists():
        path = out_dir / f"{today}-{time.strftime('%H%M%S')}.json"
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    md = HERE / "RESULTS.md"
    if not md.exists():
        md.write_text(
            "# Benchmark results\n\nOne row per `make bench` run (`benchmarks/run.py` explains"
            " the method). events/s are events / (last output - first output); ratios are"
            " handoff's events/s over each other's.\n\n"
            "| date | events | raw/s | faust/s | quix/s | handoff/s | to raw | to faust |"
            " to quix | p50/p99 ms (rate/s) | recovery s (convs) | RSS MB raw/faust/quix/handoff"
            " | machine | load avg start/end |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        )

    def eps(name: str) -> str:
        v = results.get(name, {}).get("events_per_s")
        return f"{v:,}" if v else "-"

    lat = results.get("latency", {})
    rec = results.get("recovery", {})
    rss = "/".join(str(results.get(n, {}).get("rss_mb", "-")) for n in PIPELINES)
    r = results["ratios"]
    fmt = lambda v: f"{v:.3f}" if v is not None else "-"  # noqa: E731
    row = (
        f"| {today} | {results['input']['events']:,} | {eps('raw')} | {eps('faust')} |"
        f" {eps('quix')} | {eps('handoff')} | {fmt(r['ratio_to_raw'])} |"
        f" {fmt(r['ratio_to_faust'])} | {fmt(r['ratio_to_quix'])} |"
        f" {lat.get('p50_ms', '-')}/{lat.get('p99_ms', '-')} ({lat.get('rate_per_s', '-')}) |"
        f" {rec.get('spawn_to_ready_s', '-')} ({rec.get('conversations', '-')}) | {rss} |"
        f" {machine.nproc} cpu, {machine.ram_gb} GB, {machine.cpu} |"
        f" {'/'.join(f'{x:.1f}' for x in machine.loadavg_start)} →"
        f" {'/'.join(f'{x:.1f}' for x in os.getloadavg())} |\n"
    )
    with md.open("a") as f:
        f.write(row)
    return path


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    machine = Machine.describe()
    workdir = Path(tempfile.mkdtemp(prefix="handoff-bench-"))
    broker = EmbeddedBroker(log_file=workdir / "broker.log")
    broker.start()
    bench = Bench(args, broker, workdir)
    bench.log(f"workdir {workdir} broker {broker.bootstrap} machine {machine}")
    try:
        await bench.setup()
        for name in args.pipelines:
            await getattr(bench, f"run_{name}")()
        if args.recovery_conversations > 0:
            await bench.recovery()
    finally:
        broker.stop()
    results = bench.results
    results["ratios"] = ratios(results)
    results.update(results["ratios"])
    results["machine"] = {
        "nproc": machine.nproc, "ram_gb": machine.ram_gb, "cpu": machine.cpu,
        "loadavg_start": machine.loadavg_start, "loadavg_end": os.getloadavg(),
    }  # fmt: skip
    results["date"] = dt.datetime.now().isoformat(timespec="seconds")
    results["argv"] = sys.argv[1:]
    if not args.no_write:
        path = write_results(results, machine)
        bench.log(f"wrote {path} and {HERE / 'RESULTS.md'}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument(
        "--pipelines", default=",".join(PIPELINES), help="comma list of: raw,faust,quix,handoff"
    )
    p.add_argument("--recovery-conversations", type=int, default=None,
                   help="default: min(100000, events // 2); 0 skips recovery")  # fmt: skip
    p.add_argument("--latency-seconds", type=float, default=15.0)
    p.add_argument("--batch-size", type=int, default=None,
                   help="HANDOFF_BATCH_SIZE of handoff workers; default: the setting")  # fmt: skip
    p.add_argument("--batch-within", type=float, default=None,
                   help="HANDOFF_BATCH_WITHIN (seconds); default: the setting")  # fmt: skip
    p.add_argument("--no-latency", action="store_true")
    p.add_argument("--no-write", action="store_true", help="print only; no results files")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    args = p.parse_args(argv)
    args.pipelines = [x for x in args.pipelines.split(",") if x]
    if args.recovery_conversations is None:
        args.recovery_conversations = min(100_000, args.events // 2)
    results = asyncio.run(main_async(args))
    summary = {k: results.get(k) for k in (*PIPELINES, "latency", "recovery", "ratios")}
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
