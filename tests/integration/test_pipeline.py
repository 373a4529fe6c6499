"""The processor end to end through the real embedded broker and real worker processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from handoff.broker import EmbeddedBroker
from handoff.progress import read_partitioned_records
from handoff.replay import replay
from handoff.simulate import read_events, simulate
from handoff.worker import DEFAULT_POLICY, load_policy
from tests.integration.pipeline import Deployment, bad_lines, offline, sample_lines

pytestmark = pytest.mark.integration

# HANDOFF_BATCH_SIZE: 1 is the per-event path, 100 the batch mode (handoff.agents.batch).
batch_sizes = pytest.mark.parametrize("batch_size", ["1", "100"])


def _ids(records: list[dict]) -> list[str]:
    return [r["command_id"] for r in records]


async def _check_against_oracle(dep: Deployment, good: list[bytes]) -> dict[str, int]:
    want = offline(good)
    tickets = await dep.records(dep.names.ticket_commands)
    notes = await dep.records(dep.names.crm_commands)
    assert set(_ids(tickets)) == want.ticket_ids
    assert set(_ids(notes)) == want.crm_ids
    # No conversation ever has two create commands with different idempotency keys.
    creates: dict[str, set[str]] = {}
    for t in tickets:
        if t["action"] == "create":
            creates.setdefault(t["conversation_id"], set()).add(t["idempotency_key"])
    assert all(len(keys) == 1 for keys in creates.values())
    assert creates == want.create_keys
    # Every valid event is applied: the table's changelog holds every event id once.
    state = await dep.table_state()
    applied = [eid for s in state.values() for eid in s["applied_ids"]]
    assert len(applied) == len(set(applied))
    assert set(applied) == want.event_ids
    return {
        "tickets": len(tickets),
        "distinct_tickets": len(set(_ids(tickets))),
        "notes": len(notes),
        "distinct_notes": len(set(_ids(notes))),
    }


async def _check_changelog_partitions(dep: Deployment) -> None:
    """Every table record sits in the changelog partition of the input it came from."""
    inputs = await read_partitioned_records(dep.broker.bootstrap, dep.names.events)
    home = {k: p for p, k, _ in inputs if k is not None}
    convs = await read_partitioned_records(
        dep.broker.bootstrap, f"{dep.app_id}-conversations-changelog"
    )
    assert convs
    assert all(p == home[k] for p, k, _ in convs if k is not None)
    rows = await read_partitioned_records(dep.broker.bootstrap, f"{dep.app_id}-metrics-changelog")
    assert rows
    for p, k, _ in rows:
        assert k is not None
        text = k.decode()
        want = home[text[4:].encode()] if text.startswith("sla:") else int(text.split(":")[1])
        assert p == want, text


@batch_sizes
async def test_replay_gives_the_oracle_commands_and_dead_letters(
    broker: EmbeddedBroker, tmp_path: Path, unique_name: Callable[[str], str], batch_size: str
) -> None:
    dep = await Deployment.create(
        broker, unique_name("pipe"), tmp_path, helpdesk="none", crm="none", batch_size=batch_size
    )
    try:
        dep.start_worker()
        good, bad = sample_lines(), bad_lines()
        assert await replay(broker.bootstrap, dep.names.events, good + bad) == len(good) + len(bad)
        await dep.wait()
        counts = await _check_against_oracle(dep, good)
        # Nothing redelivered in a clean run: every command was emitted once.
        assert counts["tickets"] == counts["distinct_tickets"]
        assert counts["notes"] == counts["distinct_notes"]
        # `handoff simulate` over the same file decides exactly as the stream did.
        outcomes = simulate(read_events(good + bad), load_policy(DEFAULT_POLICY))
        tickets = await dep.records(dep.names.ticket_commands)
        streamed: dict[str, set[str]] = {}
        for t in tickets:
            streamed.setdefault(t["conversation_id"], set()).update(t["escalation_reasons"])
        simulated = {o.conversation_id: set(o.reasons) for o in outcomes if o.escalated}
        assert simulated == streamed
        dead = await dep.records(dep.names.dead_letters)
        assert len(dead) == len(bad)
        assert all("field '" in d["error"] for d in dead)
        assert {d["source_topic"] for d in dead} == {dep.names.events}
        await _check_changelog_partitions(dep)
    finally:
        dep.stop_all()


@batch_sizes
async def test_restart_mid_replay_recovers_state_from_the_changelog(
    broker: EmbeddedBroker, tmp_path: Path, unique_name: Callable[[str], str], batch_size: str
) -> None:
    """A second worker with an empty data dir rebuilds the table from the changelog.

    If recovery stopped short (the embedded broker under-reports end offsets, see
    ``handoff.tables.recovery_guard``), the second half of each conversation would be
    decided on stale state: missed event ids, a second ticket create, wrong reopen.
    """
    dep = await Deployment.create(
        broker,
        unique_name("restart"),
        tmp_path,
        helpdesk="none",
        crm="none",
        batch_size=batch_size,
    )
    try:
        good = sample_lines()
        half = len(good) // 2
        first = dep.start_worker(data_dir="data-a")
        await replay(broker.bootstrap, dep.names.events, good[:half])
        await dep.wait()
        assert first.stop() == 0
        dep.start_worker(data_dir="data-b")  # nothing local: state only from the changelog
        await replay(broker.bootstrap, dep.names.events, good[half:])
        await dep.wait()
        counts = await _check_against_oracle(dep, good)
        assert counts["tickets"] == counts["distinct_tickets"]
        assert counts["notes"] == counts["distinct_notes"]
        await _check_changelog_partitions(dep)
    finally:
        dep.stop_all()
