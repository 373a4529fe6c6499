"""``python -m handoff.chaos``: the whole loop under crashes, rebalances and vendor faults.

Starts the embedded broker, the vendor sandbox with injected faults, two processor
workers and one (or more) connector workers, each a real process with its own rocksdb data
dir. While ``N`` generated conversations are replayed at a steady pace, it SIGKILLs a
worker at random moments (restarting it on the same data dir, so persisted offsets and
the recovery guard are exercised) and stops one processor gracefully (SIGTERM) so its
partitions move to the other and back. When every consumer group has caught up, the
vendors' own records are compared with the pure core run offline over the same events:

- every conversation the core escalates has exactly one ticket (or was merged into
  another conversation's ticket by the cross-conversation dedupe), and every conversation
  that gets a CRM command has exactly one note;
- every input event is either applied (its ``event_id`` is in the conversation table's
  changelog) or in ``dead-letters``.

It prints one line of ``name=value`` figures and exits 1 if anything was lost or
duplicated. The figures are what the issue asks for; ``max_recovery_s`` is the longest
time from a worker's restart until it reports ready and its consumer group commits
progress again (or has nothing left to do).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from handoff.broker import EmbeddedBroker, create_topics, true_end_offsets
from handoff.core.decide import apply_event
from handoff.core.state import ConversationState
from handoff.demo import BAD, crm_contacts
from handoff.exceptions import InvalidEvent
from handoff.procs import WorkerProcess, all_topics, free_port, worker_env
from handoff.progress import committed, read_all, read_all_records, wait_caught_up
from handoff.replay import read_lines, replay
from handoff.samples import generate_conversations, interleave
from handoff.streams.codec import decode_event
from handoff.streams.topics import TopicNames
from handoff.worker import DEFAULT_POLICY, load_policy

APP_ID = "handoff"
DEFAULT_FAULTS: dict[str, Any] = {
    "error_rate": 0.05,
    "rate_limit_rate": 0.05,
    "retry_after": 1,
    "lost_response_rate": 0.05,
    "search_lag_s": 2.0,
    "latency_ms": [0, 5],
}
READY_MARKERS = (b"]: Ready", b"Worker ready")


@dataclass(frozen=True)
class ChaosConfig:
    # 1,000 conversations (~5,900 events, ~13,000 vendor calls with these faults) take
    # about 3.5 minutes on 2 cores, with connector agents running 16 conversations at once.
    conversations: int = 1000
    kills: int = 3
    processors: int = 2
    connectors: int = 2
    seed: int = 1
    replay_seconds: float = 60.0
    settle_timeout: float = 480.0
    faults: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_FAULTS))
    workdir: Path | None = None
    log_level: str = "info"
    bad_input: bool = True


@dataclass
class Oracle:
    """What the pure core decides offline for the same events."""

    valid_ids: set[str] = field(default_factory=set)
    invalid: Counter[bytes] = field(default_factory=Counter)
    ticket_convs: set[str] = field(default_factory=set)
    note_convs: set[str] = field(default_factory=set)


def oracle(lines: Sequence[bytes]) -> Oracle:
    policy = load_policy(DEFAULT_POLICY)
    states: dict[str, ConversationState | None] = {}
    out = Oracle()
    now = time_zero()
    for line in lines:
        try:
            event = decode_event(line, _key(line))
        except InvalidEvent:
            out.invalid[line] += 1
            continue
        out.valid_ids.add(event.event_id)
        d = apply_event(states.get(event.conversation_id), event, now, policy)
        states[event.conversation_id] = d.state
        for cmd in d.commands:
            if cmd.__class__.__name__ == "TicketCommand":
                out.ticket_convs.add(cmd.conversation_id)
            else:
                out.note_convs.add(cmd.conversation_id)
    return out


def time_zero() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 12, 1, tzinfo=UTC)


def _key(line: bytes) -> bytes | None:
    from handoff.replay import key_of

    return key_of(line)


def input_lines(conversations: int, seed: int, bad_input: bool = True) -> list[bytes]:
    """Generated conversations (distinct ids per seed), interleaved, then some bad records."""
    convs = list(generate_conversations(conversations, seed=seed))
    good = [orjson.dumps(e) for e in interleave(convs, random.Random(seed))]
    if not bad_input:
        return good
    bad = list(read_lines(BAD))
    # Spread the bad records through the stream, so they meet kills and rebalances too.
    rng = random.Random(seed)
    for line in bad:
        good.insert(rng.randrange(len(good) + 1), line)
    return good


class Fleet:
    """The workers of one run: each slot has a role, a data dir and a log; restartable."""

    def __init__(self, bootstrap: str, workdir: Path, sandbox_url: str, log_level: str):
        self.bootstrap = bootstrap
        self.workdir = workdir
        self.sandbox_url = sandbox_url
        self.log_level = log_level
        self.slots: dict[str, WorkerProcess] = {}

    def start(self, slot: str, role: str) -> WorkerProcess:
        env = worker_env(
            self.bootstrap,
            self.workdir / f"data-{slot}",
            sandbox_url=self.sandbox_url,
            log_level=self.log_level,
            app_id=APP_ID,
        )
        # A fresh port per start: the one freed by a killed worker may be taken already.
        proc = WorkerProcess(role, env, self.workdir / f"{slot}.log", free_port()).start()
        self.slots[slot] = proc
        return proc

    def restart(self, slot: str) -> WorkerProcess:
        return self.start(slot, self.slots[slot].role)

    def check(self) -> None:
        for slot, w in self.slots.items():
            if w.proc is not None and w.proc.poll() not in (None, 0, -15, -9):
                raise RuntimeError(f"worker {slot} exited with {w.proc.returncode}")

    def stop_all(self) -> None:
        for w in self.slots.values():
            w.stop()

    def logs(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {s}\n{w.log_tail(chars)}" for s, w in self.slots.items())


def groups(names: TopicNames) -> dict[str, list[str]]:
    return {
        APP_ID: [names.events, names.connector_results],
        f"{APP_ID}-connectors": [names.ticket_commands, names.crm_commands],
    }


async def committed_total(bootstrap: str, group: str, topics: list[str]) -> tuple[int, int]:
    """(sum of committed offsets, lag) of ``group`` over ``topics``."""
    from aiokafka.structs import TopicPartition

    ends = {t: await true_end_offsets(bootstrap, t) for t in topics}
    tps = [TopicPartition(t, p) for t, parts in ends.items() for p in parts]
    done = await committed(bootstrap, group, tps)
    total = sum(max(0, v) for v in done.values())
    lag = sum(max(0, e - max(0, done.get((t, p), 0))) for t in ends for p, e in ends[t].items())
    return total, lag


async def recovery_time(
    bootstrap: str,
    proc: WorkerProcess,
    log_from: int,
    group: str,
    topics: list[str],
    started: float,
    timeout: float = 180.0,
) -> float:
    """Seconds from ``started`` until ``proc`` is ready and ``group`` makes progress again."""
    base: int | None = None
    while time.monotonic() - started < timeout:
        if base is None:
            try:
                text = proc.log_path.read_bytes()[log_from:]
            except FileNotFoundError:
                text = b""
            if any(m in text for m in READY_MARKERS):
                base, lag = await committed_total(bootstrap, group, topics)
                if lag == 0:
                    return time.monotonic() - started
        else:
            total, lag = await committed_total(bootstrap, group, topics)
            if total > base or lag == 0:
                return time.monotonic() - started
        await asyncio.sleep(0.25)  # polling interval
    return float("inf")


@dataclass
class Action:
    at: float
    kind: str  # "kill" or "term"
    slot: str


def plan(cfg: ChaosConfig, slots: dict[str, str], rng: random.Random) -> list[Action]:
    """``cfg.kills`` SIGKILLs and one SIGTERM, spread over the replay at random moments.

    The first kill hits a processor and (with 2+ kills) one hits a connector worker; the
    SIGTERM always stops a processor, so its partitions move to the other one.
    """
    processors = [s for s, r in slots.items() if r == "processor"]
    connectors = [s for s, r in slots.items() if r == "connectors"]
    targets = [rng.choice(processors)]
    if cfg.kills >= 2 and connectors:
        targets.append(rng.choice(connectors))
    while len(targets) < cfg.kills:
        targets.append(rng.choice(list(slots)))
    kinds = [("kill", t) for t in targets[: cfg.kills]] + [("term", rng.choice(processors))]
    rng.shuffle(kinds)
    span = cfg.replay_seconds / max(1, len(kinds))
    return [
        Action(at=span * i + rng.uniform(0.2, 0.8) * span, kind=k, slot=s)
        for i, (k, s) in enumerate(kinds)
    ]


async def paced_replay(
    bootstrap: str, topic: str, lines: list[bytes], seconds: float, chunks: int = 60
) -> int:
    """Produce ``lines`` in ``chunks`` equal slices spread over ``seconds``, like live traffic."""
    size = max(1, -(-len(lines) // chunks))
    sent = 0
    start = time.monotonic()
    for i in range(0, len(lines), size):
        sent += await replay(bootstrap, topic, lines[i : i + size])
        due = start + seconds * (i + size) / len(lines)
        await asyncio.sleep(max(0.0, due - time.monotonic()))  # pacing, not synchronisation
    return sent


async def run_actions(
    actions: list[Action], fleet: Fleet, names: TopicNames, rng: random.Random, log: Callable
) -> list[float]:
    """Carry out the plan; return the recovery time of every restart."""
    start = time.monotonic()
    recoveries: list[asyncio.Task[float]] = []
    for act in actions:
        await asyncio.sleep(max(0.0, start + act.at - time.monotonic()))
        proc = fleet.slots[act.slot]
        if act.kind == "kill":
            proc.kill()
            down = rng.uniform(0.5, 3.0)
        else:
            await asyncio.to_thread(proc.stop)
            down = 10.0  # long enough for the group to move its partitions to the other
        log(f"{act.kind} {act.slot} at {time.monotonic() - start:.1f}s, down {down:.1f}s")
        await asyncio.sleep(down)
        log_from = proc.log_path.stat().st_size if proc.log_path.exists() else 0
        restarted_at = time.monotonic()
        new = fleet.restart(act.slot)
        group = APP_ID if new.role == "processor" else f"{APP_ID}-connectors"
        recoveries.append(
            asyncio.create_task(
                recovery_time(
                    fleet.bootstrap, new, log_from, group, groups(names)[group], restarted_at
                )
            )
        )
    times = list(await asyncio.gather(*recoveries))
    log(f"recovery after each restart (s): {[round(t, 1) for t in times]}")
    return times


@dataclass
class Figures:
    values: dict[str, Any]

    def line(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.values.items())

    @property
    def ok(self) -> bool:
        v = self.values
        return not (
            v["duplicate_tickets"]
            or v["duplicate_notes"]
            or v["lost_events"]
            or v["missing_tickets"]
            or v["missing_notes"]
        )


async def verify(
    bootstrap: str, names: TopicNames, sandbox_url: str, lines: list[bytes], want: Oracle
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as http:
        tickets = (await http.get("/_sandbox/tickets")).json()["tickets"]
        notes = (await http.get("/_sandbox/notes")).json()["notes"]
        stats = (await http.get("/_sandbox/stats")).json()
    per_conv_tickets = Counter(t["bot_conversation_id"] or t["external_id"] for t in tickets)
    per_conv_notes = Counter(n["handoff_conversation_id"] for n in notes)
    results = [orjson.loads(v) for v in await read_all(bootstrap, names.connector_results)]
    merged = {r["conversation_id"] for r in results if r["status"] == "deduplicated"}
    failed = {(r["kind"], r["conversation_id"]) for r in results if r["status"] == "failed"}

    changelog = f"{APP_ID}-conversations-changelog"
    latest: dict[bytes, bytes] = {}
    for key, value in await read_all_records(bootstrap, changelog):
        if key is not None and value is not None:
            latest[key] = value
    applied: Counter[str] = Counter()
    for value in latest.values():
        applied.update(orjson.loads(value).get("applied_ids", []))

    lost_at = await _lost_positions(bootstrap, names.events, set(applied), want)
    dead = [orjson.loads(v) for v in await read_all(bootstrap, names.dead_letters)]
    from_events = {
        (d["partition"], d["offset"]): base64.b64decode(d["value"])
        for d in dead
        if d["source_topic"] == names.events
    }
    dead_values = Counter(from_events.values())
    lost = len(want.valid_ids - set(applied))
    lost += sum(max(0, n - dead_values[v]) for v, n in want.invalid.items())

    faults = stats.get("faults") or {}
    missing_tickets = {c for c in want.ticket_convs if per_conv_tickets[c] == 0 and c not in merged}
    missing_notes = {c for c in want.note_convs if per_conv_notes[c] == 0}
    if lost_at:
        print(f"chaos: lost events at (partition: offsets): {lost_at}", file=sys.stderr)
    return {
        "conversations": len({c for c in per_conv_tickets} | want.ticket_convs | want.note_convs),
        "events": len(lines),
        "tickets": len(tickets),
        "duplicate_tickets": sum(max(0, n - 1) for n in per_conv_tickets.values()),
        "missing_tickets": len(missing_tickets),
        "notes": len(notes),
        "duplicate_notes": sum(max(0, n - 1) for n in per_conv_notes.values()),
        "missing_notes": len(missing_notes),
        "lost_events": lost,
        "applied_twice": sum(1 for n in applied.values() if n > 1),
        # Distinct source records; a redelivery after a kill may dead-letter one twice.
        "dead_letters": len({(d["source_topic"], d["partition"], d["offset"]) for d in dead}),
        "dead_letter_records": len(dead),
        "dead_letters_input": len(from_events),
        "failed_commands": len(failed),
        "sandbox_duplicate_tickets": stats.get("duplicate_tickets"),
        "sandbox_duplicate_notes": stats.get("duplicate_notes"),
        "faults_5xx": faults.get("error", 0),
        "faults_429": faults.get("rate_limit", 0),
        "lost_responses": faults.get("lost_response", 0),
    }


async def _lost_positions(
    bootstrap: str, topic: str, applied: set[str], want: Oracle
) -> dict[int, list[tuple[int, int]]]:
    """Where the valid events that were never applied sit: partition -> offset ranges."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    ends = await true_end_offsets(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    missing: dict[int, list[int]] = {}
    try:
        tps = [TopicPartition(topic, p) for p, e in ends.items() if e > 0]
        consumer.assign(tps)
        pos = {tp.partition: 0 for tp in tps}
        while any(pos[p] < ends[p] for p in pos):
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for rec in records:
                    pos[tp.partition] = rec.offset + 1
                    try:
                        eid = orjson.loads(rec.value or b"{}").get("event_id")
                    except (orjson.JSONDecodeError, AttributeError):
                        continue
                    if eid in want.valid_ids and eid not in applied:
                        missing.setdefault(tp.partition, []).append(rec.offset)
    finally:
        await consumer.stop()
    out: dict[int, list[tuple[int, int]]] = {}
    for part, offsets in missing.items():
        ranges: list[tuple[int, int]] = []
        for off in sorted(offsets):
            if ranges and off == ranges[-1][1] + 1:
                ranges[-1] = (ranges[-1][0], off)
            else:
                ranges.append((off, off))
        out[part] = ranges
    return out


async def run_chaos(cfg: ChaosConfig, log: Callable[[str], None] = print) -> Figures:
    from handoff.connectors.sandbox.server import SandboxThread

    rng = random.Random(cfg.seed)
    names = TopicNames()
    lines = input_lines(cfg.conversations, cfg.seed, cfg.bad_input)
    want = oracle(lines)
    t0 = time.monotonic()
    with ExitStack() as stack:
        if cfg.workdir is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="handoff-chaos-"))
            workdir = Path(tmp)
        else:
            workdir = cfg.workdir
            workdir.mkdir(parents=True, exist_ok=True)
        broker = stack.enter_context(EmbeddedBroker())
        sandbox = stack.enter_context(SandboxThread(contacts=crm_contacts(lines)))
        httpx.post(f"{sandbox.base_url}/_sandbox/faults", json={**cfg.faults, "seed": cfg.seed})
        await create_topics(broker.bootstrap, all_topics(names), partitions=4)
        fleet = Fleet(broker.bootstrap, workdir, sandbox.base_url, cfg.log_level)
        stack.callback(fleet.stop_all)
        slots = {f"processor-{i}": "processor" for i in range(cfg.processors)}
        slots.update({f"connectors-{i}": "connectors" for i in range(cfg.connectors)})
        for slot, role in slots.items():
            fleet.start(slot, role)
        actions = plan(cfg, slots, rng)
        steps = [(round(a.at, 1), a.kind, a.slot) for a in actions]
        log(f"chaos: {len(lines)} events, plan: {steps}")
        replayer = asyncio.create_task(
            paced_replay(broker.bootstrap, names.events, lines, cfg.replay_seconds)
        )
        recoveries = await run_actions(actions, fleet, names, rng, log)
        sent = await replayer
        log(f"chaos: replayed {sent}; waiting for the groups to catch up")
        try:
            took = await wait_caught_up(
                broker.bootstrap, groups(names), timeout=cfg.settle_timeout, check=fleet.check
            )
        except (TimeoutError, RuntimeError) as exc:
            log(f"chaos: {exc}; logs in {workdir}\n{fleet.logs()}")
            raise
        log(f"chaos: caught up {took:.1f}s after the last action")
        figures = await verify(broker.bootstrap, names, sandbox.base_url, lines, want)
    values = {
        "conversations": cfg.conversations,
        "events": figures.pop("events"),
        "kills": cfg.kills,
        "terms": 1,
        **{k: v for k, v in figures.items() if k != "conversations"},
        "max_recovery_s": round(max(recoveries, default=0.0), 1),
        "wall_s": round(time.monotonic() - t0, 1),
    }
    return Figures(values)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m handoff.chaos", description=__doc__.split("\n")[0])
    p.add_argument("--conversations", type=int, default=ChaosConfig.conversations)
    p.add_argument("--kills", type=int, default=ChaosConfig.kills)
    p.add_argument("--connectors", type=int, default=ChaosConfig.connectors)
    p.add_argument("--seed", type=int, default=ChaosConfig.seed)
    p.add_argument("--replay-seconds", type=float, default=ChaosConfig.replay_seconds)
    p.add_argument("--settle-timeout", type=float, default=ChaosConfig.settle_timeout)
    p.add_argument("--faults", type=orjson.loads, default=None, help="JSON, as /_sandbox/faults")
    p.add_argument("--workdir", type=Path, help="keep data dirs and worker logs here")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = ChaosConfig(
        conversations=args.conversations,
        kills=args.kills,
        connectors=args.connectors,
        seed=args.seed,
        replay_seconds=args.replay_seconds,
        settle_timeout=args.settle_timeout,
        faults={**DEFAULT_FAULTS, **(args.faults or {})},
        workdir=args.workdir,
        log_level=args.log_level,
    )
    figures = asyncio.run(run_chaos(cfg, log=lambda m: print(m, file=sys.stderr, flush=True)))
    print(figures.line(), flush=True)
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
