"""The chaos run's plan: who is killed and stopped, and when (no processes started)."""

from __future__ import annotations

import random

from handoff.chaos import ChaosConfig, plan


def test_the_plan_kills_a_processor_and_a_connector_and_stops_a_processor() -> None:
    cfg = ChaosConfig(kills=3, replay_seconds=40)
    slots = {"processor-0": "processor", "processor-1": "processor", "connectors-0": "connectors"}
    for seed in range(20):
        actions = plan(cfg, slots, random.Random(seed))
        kills = [a for a in actions if a.kind == "kill"]
        terms = [a for a in actions if a.kind == "term"]
        assert len(kills) == 3 and len(terms) == 1
        assert {slots[a.slot] for a in kills} == {"processor", "connectors"}
        assert slots[terms[0].slot] == "processor"
        assert [a.at for a in actions] == sorted(a.at for a in actions)
        assert all(0 < a.at < cfg.replay_seconds for a in actions)
