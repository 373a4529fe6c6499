"""Events per second per core on the ``handoff simulate`` path: decode, apply, and both.

    .venv/bin/python benchmarks/simulate_bench.py [EVENTS] [REPEATS]

Generates about EVENTS events (default 200k) with ``handoff.samples``, then times, in one
process (one core): ``decode_event`` on every line; ``apply_event`` over every conversation
as ``handoff simulate`` runs it (cyclic GC paused, commands not materialized); and the two
together via ``read_events`` + ``simulate``. Also ``apply_event`` *with* commands built, which
is what a worker pays. Best of REPEATS runs; a loaded machine gives lower numbers.

Each line gives events per wall-clock second and, in brackets, per CPU second of this
process (``time.process_time``). The process is single-threaded, so on an idle machine the
two agree; on a shared one the CPU figure leaves out the time other processes held the
core (not the cache they evict, so it is still lower than on an idle machine).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import orjson

from handoff.core.decide import apply_event
from handoff.core.policy import default_policy
from handoff.samples import generate_conversations
from handoff.simulate import gc_paused, read_events, simulate
from handoff.streams.codec import decode_event


def best(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """The shortest (wall, cpu) seconds of ``repeats`` runs (each minimum on its own)."""
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return min(wall), min(cpu)


def main() -> None:
    target = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    lines = []
    for conv in generate_conversations(target // 5, seed=3):
        lines += [orjson.dumps(e) for e in conv]
        if len(lines) >= target:
            break
    n = len(lines)
    policy = default_policy()
    rec = read_events(lines)

    def decode() -> None:
        with gc_paused():
            for line in lines:
                decode_event(line)

    def apply(materialize: bool = False) -> None:
        with gc_paused():
            for events in rec.conversations.values():
                state = None
                for e in events:
                    d = apply_event(state, e, e.occurred_at, policy)
                    state = d.state
                    if materialize:
                        d.commands  # noqa: B018

    def both() -> None:
        simulate(read_events(lines), policy)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"events={n} conversations={len(rec.conversations)} cpus={os.cpu_count()}", end=" ")
    print(f"load1={load:.2f}")
    for name, fn in [
        ("decode", decode),
        ("apply", apply),
        ("decode+apply (simulate)", both),
        ("apply with commands", lambda: apply(True)),
    ]:
        secs, cpu = best(fn, repeats)
        print(
            f"{name:<26} {n / secs:>10,.0f} events/s per core  ({secs:.2f} s)"
            f"  [cpu {n / cpu:,.0f}/s]"
        )


if __name__ == "__main__":
    main()
