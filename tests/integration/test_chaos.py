"""The chaos harness, small: kills, a graceful stop and vendor faults, nothing lost or doubled.

``make chaos`` runs the full size; this is the same code with fewer conversations.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from handoff.chaos import ChaosConfig, run_chaos

pytestmark = pytest.mark.integration


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_chaos_small_nothing_lost_nothing_duplicated(tmp_path: Path) -> None:
    cfg = ChaosConfig(
        conversations=120,
        kills=2,
        connectors=1,
        replay_seconds=25,
        settle_timeout=400,
        workdir=tmp_path,
        seed=3,
    )
    figures = await run_chaos(cfg, log=lambda m: None)
    v = figures.values
    assert v["kills"] == 2 and v["events"] > 700
    assert v["duplicate_tickets"] == 0 and v["sandbox_duplicate_tickets"] == 0
    assert v["duplicate_notes"] == 0 and v["sandbox_duplicate_notes"] == 0
    assert v["missing_tickets"] == 0 and v["missing_notes"] == 0
    assert v["lost_events"] == 0 and v["applied_twice"] == 0
    assert v["dead_letters_input"] >= 8  # the bundled bad records
    assert v["faults_5xx"] > 0 and v["faults_429"] > 0 and v["lost_responses"] > 0
    assert figures.ok, figures.line()
