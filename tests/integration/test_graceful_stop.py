"""Graceful stop: SIGTERM mid-stream flushes, commits and leaves; the next worker redoes nothing.

The processor emits commands with deterministic ids, so "no work redone" is checkable on
the command topics: after a SIGTERM in the middle of the replay and a fresh worker (own
data dir: state only from the changelog), every command id appears exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from handoff.broker import EmbeddedBroker
from handoff.chaos import input_lines
from handoff.progress import lag
from handoff.replay import replay
from tests.integration.pipeline import Deployment, offline

pytestmark = pytest.mark.integration


# (HANDOFF_BATCH_SIZE, conversations): batch mode is faster, so it gets more input to be
# stopped in the middle of (the first commit must come before the end).
@pytest.mark.parametrize(("batch_size", "conversations"), [("1", 400), ("100", 3000)])
async def test_sigterm_mid_stream_then_a_new_worker_redelivers_no_command(
    broker: EmbeddedBroker,
    tmp_path: Path,
    unique_name: Callable[[str], str],
    batch_size: str,
    conversations: int,
) -> None:
    # Commits every 0.5 s (the default is 2.8 s), so the first commit comes well before the
    # end of the input even on a fast machine, and the stop lands mid-stream.
    dep = await Deployment.create(
        broker,
        unique_name("term"),
        tmp_path,
        helpdesk="none",
        crm="none",
        batch_size=batch_size,
        commit_interval="0.5",
    )
    try:
        # ~5.8 events a conversation: seconds of work
        good = input_lines(conversations, seed=5, bad_input=False)
        first = dep.start_worker(data_dir="data-a")
        await replay(broker.bootstrap, dep.names.events, good)
        topics = [dep.names.events, dep.names.connector_results]
        deadline = time.monotonic() + 60
        while await lag(broker.bootstrap, dep.app_id, topics) >= len(good):  # no commit yet
            assert time.monotonic() < deadline, first.log_tail()
            await asyncio.sleep(0.1)  # polling the group's progress
        left = await lag(broker.bootstrap, dep.app_id, topics)
        assert first.stop() == 0  # SIGTERM, mid-stream
        assert left > 0, "the worker finished before the stop; nothing was tested"

        dep.start_worker(data_dir="data-b")
        await dep.wait()
        want = offline(good)
        for topic, ids in (
            (dep.names.ticket_commands, want.ticket_ids),
            (dep.names.crm_commands, want.crm_ids),
        ):
            seen = Counter(r["command_id"] for r in await dep.records(topic))
            assert set(seen) == ids
            redelivered = {cid: n for cid, n in seen.items() if n > 1}
            assert redelivered == {}
        state = await dep.table_state()
        applied = [eid for s in state.values() for eid in s["applied_ids"]]
        assert sorted(applied) == sorted(want.event_ids)
    finally:
        dep.stop_all()
