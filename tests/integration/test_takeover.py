"""A rocksdb worker whose local store is ahead of the changelog rebuilds, never crashes.

Faust stops a worker with ``ConsistencyError`` when a partition's persisted offset is past
the changelog's end (seen on the embedded broker, whose ``ListOffsets`` under-reports the
end, and whenever a data dir outlives its in-memory broker). The test forces that state:
it runs a worker, stops it, then rewrites its local stores so that each partition claims
an offset far past the end *and* has lost its conversations. Restarted on that data dir,
the worker must rebuild the partitions from the changelog (any local leftovers would
decide the second half on lost state: a second ticket create, forgotten event ids).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rocksdict import Rdict

from handoff.broker import EmbeddedBroker
from handoff.replay import replay
from tests.integration.pipeline import Deployment, offline, sample_lines

pytestmark = pytest.mark.integration

OFFSET_KEY = b"__faust\0offset__"


def _tamper(data_dir: Path) -> int:
    """Every conversations partition: drop the data, claim offset 1_000_000."""
    dbs = sorted(p for p in data_dir.rglob("*conversations-*.db") if p.is_dir())
    for path in dbs:
        db = Rdict(str(path))
        try:
            for key in list(db.keys()):
                del db[key]
            db[OFFSET_KEY] = b"1000000"
        finally:
            db.close()
    return len(dbs)


async def test_restart_on_a_store_past_the_changelog_end_rebuilds_it(
    broker: EmbeddedBroker, tmp_path: Path, unique_name: Callable[[str], str]
) -> None:
    dep = await Deployment.create(
        broker, unique_name("ahead"), tmp_path, helpdesk="none", crm="none"
    )
    try:
        good = sample_lines()
        half = len(good) // 2
        first = dep.start_worker(data_dir="data-a")
        await replay(broker.bootstrap, dep.names.events, good[:half])
        await dep.wait()
        assert first.stop() == 0
        assert _tamper(tmp_path / "data-a") == 4

        second = dep.start_worker(data_dir="data-a")
        await replay(broker.bootstrap, dep.names.events, good[half:])
        await dep.wait()
        log = second.log_tail(200_000)
        assert "ConsistencyError" not in log
        assert log.count("rebuilding from the changelog") == 4

        want = offline(good)
        tickets = await dep.records(dep.names.ticket_commands)
        assert {t["command_id"] for t in tickets} == want.ticket_ids
        creates: dict[str, set[str]] = {}
        for t in tickets:
            if t["action"] == "create":
                creates.setdefault(t["conversation_id"], set()).add(t["idempotency_key"])
        assert creates == want.create_keys
        state = await dep.table_state()
        applied = [eid for s in state.values() for eid in s["applied_ids"]]
        assert sorted(applied) == sorted(want.event_ids)
    finally:
        dep.stop_all()
