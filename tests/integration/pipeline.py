"""Shared pieces of the pipeline integration tests: a per-test deployment and oracles.

The oracle for "what should have come out" is the pure core itself, applied offline to
the same events in each conversation's order: command ids are deterministic, so the
streaming run (with restarts, redeliveries, rebalances) must produce exactly that set.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from handoff.broker import EmbeddedBroker, create_topics
from handoff.core.decide import apply_event
from handoff.core.state import ConversationState
from handoff.procs import WorkerProcess, all_topics, fail_if_dead, worker_env
from handoff.progress import read_all, read_all_records, wait_caught_up
from handoff.streams.codec import decode_event
from handoff.streams.topics import TopicNames
from handoff.worker import DEFAULT_POLICY, load_policy

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "handoff" / "data" / "sample_conversations.jsonl"
BAD = ROOT / "handoff" / "data" / "sample_bad_events.jsonl"


def sample_lines() -> list[bytes]:
    return [x for x in SAMPLE.read_bytes().splitlines() if x.strip()]


def bad_lines() -> list[bytes]:
    return [x for x in BAD.read_bytes().splitlines() if x.strip()]


@dataclass
class Expected:
    ticket_ids: set[str] = field(default_factory=set)
    crm_ids: set[str] = field(default_factory=set)
    create_keys: dict[str, set[str]] = field(default_factory=dict)
    event_ids: set[str] = field(default_factory=set)


def offline(lines: list[bytes]) -> Expected:
    """Apply the pure core to the events, per conversation in order, as the oracle."""
    policy = load_policy(DEFAULT_POLICY)
    states: dict[str, ConversationState | None] = defaultdict(lambda: None)
    out = Expected()
    now = datetime(2026, 12, 1, tzinfo=UTC)
    for line in lines:
        event = decode_event(line)
        out.event_ids.add(event.event_id)
        d = apply_event(states[event.conversation_id], event, now, policy)
        states[event.conversation_id] = d.state
        for cmd in d.commands:
            if cmd.__class__.__name__ == "TicketCommand":
                out.ticket_ids.add(cmd.command_id)
                if getattr(cmd, "action", "create") == "create":
                    out.create_keys.setdefault(cmd.conversation_id, set()).add(cmd.idempotency_key)
            else:
                out.crm_ids.add(cmd.command_id)
    return out


@dataclass
class Deployment:
    broker: EmbeddedBroker
    names: TopicNames
    app_id: str
    workdir: Path
    extra_env: dict[str, str]
    workers: list[WorkerProcess] = field(default_factory=list)

    @classmethod
    async def create(
        cls, broker: EmbeddedBroker, unique: str, workdir: Path, **extra_env: str
    ) -> Deployment:
        names = TopicNames.with_prefix(f"{unique}.")
        await create_topics(broker.bootstrap, all_topics(names), partitions=4)
        return cls(broker, names, unique, workdir, extra_env)

    def start_worker(self, role: str = "processor", data_dir: str = "data") -> WorkerProcess:
        n = len(self.workers)
        env = worker_env(
            self.broker.bootstrap,
            self.workdir / data_dir,
            app_id=self.app_id,
            topic_prefix=f"{self.app_id}.",
            **{"log_level": "info", **self.extra_env},
        )
        proc = WorkerProcess(role, env, self.workdir / f"{role}-{n}.log").start()
        self.workers.append(proc)
        return proc

    def stop_all(self) -> None:
        for w in self.workers:
            w.stop()

    async def wait(self, timeout: float = 90.0, *, connectors: bool = False) -> float:
        groups = {self.app_id: [self.names.events, self.names.connector_results]}
        if connectors:
            groups[f"{self.app_id}-connectors"] = [
                self.names.ticket_commands,
                self.names.crm_commands,
            ]

        try:
            return await wait_caught_up(
                self.broker.bootstrap,
                groups,
                timeout=timeout,
                check=lambda: fail_if_dead(self.workers),
            )
        except TimeoutError as exc:
            logs = "\n".join(f"--- {w.log_path.name}\n{w.log_tail()}" for w in self.workers)
            raise AssertionError(f"{exc}\n{logs}") from None

    async def records(self, topic: str) -> list[dict[str, Any]]:
        return [orjson.loads(v) for v in await read_all(self.broker.bootstrap, topic)]

    async def table_state(self) -> dict[str, dict[str, Any]]:
        """The conversation table as its changelog holds it (latest value per key)."""
        topic = f"{self.app_id}-conversations-changelog"
        latest: dict[str, dict[str, Any]] = {}
        for key, value in await read_all_records(self.broker.bootstrap, topic):
            if key is not None and value is not None:
                latest[key.decode()] = orjson.loads(value)
        return latest
