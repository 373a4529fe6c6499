"""Lost broker: a worker started before its broker waits for it; a paused broker is survived.

Both tests run their own broker (the session broker must not be paused or absent).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from handoff.broker import EmbeddedBroker, create_topics
from handoff.procs import WorkerProcess, all_topics, fail_if_dead, free_port, worker_env
from handoff.progress import wait_caught_up
from handoff.replay import replay
from handoff.streams.topics import TopicNames
from tests.integration.pipeline import Deployment, offline, sample_lines

pytestmark = pytest.mark.integration


async def _wait_for_log(proc: WorkerProcess, text: str, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.2)):
        if text in proc.log_tail(1_000_000):
            return
        assert proc.is_running(), proc.log_tail()
        await asyncio.sleep(0.2)  # polling a log file
    raise AssertionError(f"{text!r} not logged in {timeout}s:\n{proc.log_tail()}")


async def test_a_worker_started_before_the_broker_waits_then_processes(
    tmp_path: Path, unique_name: Callable[[str], str]
) -> None:
    port = free_port()
    app_id = unique_name("early")
    names = TopicNames.with_prefix(f"{app_id}.")
    env = worker_env(
        f"127.0.0.1:{port}",
        tmp_path / "data",
        app_id=app_id,
        topic_prefix=f"{app_id}.",
        helpdesk="none",
        crm="none",
    )
    worker = WorkerProcess("processor", env, tmp_path / "worker.log").start()
    try:
        await _wait_for_log(worker, "broker unreachable")
        # Retries come 0.5, 1, 2, 4 s apart: start the broker inside the 4 s gap, so the
        # topics exist before the worker gets in.
        await asyncio.sleep(4.0)  # staying inside a known backoff window
        assert worker.is_running()
        with EmbeddedBroker(port=port) as broker:
            await create_topics(broker.bootstrap, all_topics(names), partitions=4)
            await _wait_for_log(worker, "broker reachable")
            good = sample_lines()[:120]
            await replay(broker.bootstrap, names.events, good)
            await wait_caught_up(
                broker.bootstrap,
                {app_id: [names.events, names.connector_results]},
                timeout=90,
                check=lambda: fail_if_dead([worker]),
            )
            log = worker.log_tail(1_000_000)
            assert log.count("broker unreachable") == 1  # one line per state change
            assert log.count("broker reachable") == 1
            assert worker.stop() == 0
    finally:
        worker.stop()


async def test_a_paused_broker_is_survived(
    tmp_path: Path, unique_name: Callable[[str], str]
) -> None:
    """SIGSTOP the broker past the session timeout, then SIGCONT: the worker carries on.

    Faust logs nothing at WARNING meanwhile; the worker's broker watch logs one line when
    the broker stops answering and one when it is back.
    """
    with EmbeddedBroker() as broker:
        dep = await Deployment.create(
            broker, unique_name("pause"), tmp_path, helpdesk="none", crm="none"
        )
        try:
            worker = dep.start_worker()
            good = sample_lines()
            half = len(good) // 2
            await replay(broker.bootstrap, dep.names.events, good[:half])
            await dep.wait()
            assert broker.pid is not None
            os.kill(broker.pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(15.0)  # past the session timeout, broker frozen
            finally:
                os.kill(broker.pid, signal.SIGCONT)
            await replay(broker.bootstrap, dep.names.events, good[half:])
            await dep.wait(timeout=120)
            assert worker.is_running()
            log = worker.log_tail(1_000_000)
            assert log.count("broker connection lost") == 1, log[-5000:]
            assert log.count("broker connection back") == 1
            want = offline(good)
            tickets = await dep.records(dep.names.ticket_commands)
            assert {t["command_id"] for t in tickets} == want.ticket_ids
            state = await dep.table_state()
            applied = {eid for s in state.values() for eid in s["applied_ids"]}
            assert applied == want.event_ids
        finally:
            dep.stop_all()
