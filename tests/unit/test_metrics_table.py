"""The metrics rows over a plain dict (what the Faust table is to this code)."""

from __future__ import annotations

from handoff.core import metrics as m
from handoff.core.decide import apply_event
from handoff.tables.metrics import MetricsTable, summarize_partitions
from tests.strategies import T0
from tests.unit.test_metrics import POLICY, two_conversations


def test_rows_per_partition_and_window_sum_to_the_totals() -> None:
    store: dict[bytes, bytes] = {}
    table = MetricsTable(store)
    states: dict[str, object] = {}
    for event in two_conversations():
        prev = states.get(event.conversation_id)
        d = apply_event(prev, event, T0, POLICY)  # type: ignore[arg-type]
        part = 0 if event.conversation_id == "conv-a" else 1
        table.observe(part, prev, event, d, latency=0.2)  # type: ignore[arg-type]
        states[event.conversation_id] = d.state
    table.observe(1, None, None, None)  # a dead letter
    # A totals row per partition, holding the open minute and hour; conversation A's
    # events spanned three minutes, so two closed minutes have rows of their own.
    assert sorted(k.split(b":")[0] for k in store) == [b"m", b"m", b"t", b"t"]
    rows = table.local([0, 1])
    s = summarize_partitions(rows)
    assert s["totals"]["conversations_started"] == 2
    assert s["totals"]["dead_letters"] == 1
    assert s["totals"]["ticket_latency_count"] == 1
    assert s["rates"]["sla_within_target"] == 1.0
    minutes = sum(r["conversations_started"] for r in s["trend"]["minutes"])
    assert minutes == 2
    assert table.local([3]) == {"3": {"total": {}, "watermark": None, "minutes": {}, "hours": {}}}


def test_old_windows_are_deleted_when_a_new_one_opens() -> None:
    store: dict[bytes, bytes] = {}
    table = MetricsTable(store)
    delta = {m.key("escalations"): 1.0}
    table.record(0, delta, 0.0)
    table.record(0, delta, float(3 * m.HOUR))  # minute 0 is now past its 2 h retention
    assert b"m:0:0" not in store
    assert b"h:0:0" in store  # hours are kept 48 h
    table.record(0, delta, 10.0)  # late: counts in the total, not in an expired window
    rows = table.local([0])["0"]
    assert rows["total"] == {m.key("escalations"): 3.0}
    assert sorted(rows["minutes"]) == [str(3 * m.HOUR)]
    assert rows["hours"]["0"] == {m.key("escalations"): 2.0}


class _Counting(dict[bytes, bytes]):
    writes = 0

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes += 1
        super().__setitem__(key, value)


def test_one_row_write_per_input_inside_a_window() -> None:
    store = _Counting()
    table = MetricsTable(store)
    delta = {m.key("escalations"): 1.0}
    for second in range(0, 60, 5):
        table.record(0, delta, float(second))
    assert store.writes == 12
    table.record(0, delta, 61.0)  # the minute rolls: its row is written once
    assert store.writes == 14
    table.record(0, {}, 62.0)  # nothing moved: nothing written
    assert store.writes == 14
