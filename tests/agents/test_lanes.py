"""Keyed lanes: order within a key, concurrency across keys, errors after every lane ends."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handoff.agents.lanes import lanes_of, run_lanes


@given(st.lists(st.tuples(st.sampled_from("abcde"), st.integers()), max_size=60))
def test_lanes_keep_every_item_once_in_input_order_per_key(
    items: list[tuple[str, int]],
) -> None:
    lanes = lanes_of(items, key=lambda it: it[0])
    assert sorted(x for lane in lanes for x in lane) == sorted(items)
    for lane in lanes:
        assert len({k for k, _ in lane}) == 1
        assert lane == [it for it in items if it[0] == lane[0][0]]
    firsts = [lane[0] for lane in lanes]
    assert firsts == sorted(firsts, key=items.index)


@given(
    st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(0, 3)), max_size=40),
    st.integers(1, 4),
)
def test_run_lanes_order_per_key_and_the_limit_hold_for_any_batch(
    items: list[tuple[str, int]], limit: int
) -> None:
    done: list[tuple[str, int]] = []
    running: set[str] = set()
    peak = 0

    async def work(item: tuple[str, int]) -> None:
        nonlocal peak
        key, yields = item
        assert key not in running  # one item of a key at a time
        running.add(key)
        peak = max(peak, len(running))
        for _ in range(yields):
            await asyncio.sleep(0)  # hand the loop to the other lanes
        running.discard(key)
        done.append(item)

    asyncio.run(run_lanes(items, lambda it: it[0], work, limit=limit))
    assert sorted(done) == sorted(items)
    for key in {k for k, _ in items}:
        assert [it for it in done if it[0] == key] == [it for it in items if it[0] == key]
    assert peak <= limit


async def test_lanes_overlap_so_a_waiting_key_does_not_hold_up_the_others() -> None:
    release = asyncio.Event()
    order: list[str] = []

    async def work(item: str) -> None:
        if item == "slow":
            await release.wait()  # e.g. a Retry-After
        order.append(item)
        if item == "fast-2":
            release.set()

    items = ["slow", "fast-1", "fast-2"]
    await asyncio.wait_for(run_lanes(items, lambda it: it, work, limit=3), timeout=5)
    assert order == ["fast-1", "fast-2", "slow"]


async def test_an_error_is_raised_after_the_other_lanes_finished() -> None:
    finished: list[str] = []

    async def work(item: str) -> None:
        if item == "a1":
            raise RuntimeError("send failed")
        await asyncio.sleep(0)
        finished.append(item)

    items = ["a1", "b1", "a2", "b2", "c1"]
    with pytest.raises(RuntimeError, match="send failed"):
        await run_lanes(items, lambda it: it[0], work, limit=2)
    assert sorted(finished) == ["b1", "b2", "c1"]  # the other lanes ran to the end
    # and the failed lane stopped: "a2" never ran


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        asyncio.run(run_lanes([1], lambda it: it, lambda it: asyncio.sleep(0), limit=0))
