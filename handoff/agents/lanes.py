"""Keyed lanes: run a batch of inputs concurrently across keys, in order within a key.

The connector agents use this to keep many vendor calls in flight (a 429's ``Retry-After``
or a retry's backoff no longer holds up every command behind it) while each
conversation's commands still run one after another, in offset order: a ticket create
always finishes before that conversation's updates start.

A batch ends when every lane has finished, even if one of them raised: no call is cut
off halfway, and the first error is raised only then (Faust acknowledges a batch after
the agent body is done with it, so nothing is acknowledged before its lane finished).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")


def lanes_of(items: Sequence[T], key: Callable[[T], Hashable]) -> list[list[T]]:
    """Group ``items`` by ``key``: lanes in order of first appearance, items in input order."""
    lanes: dict[Hashable, list[T]] = {}
    for item in items:
        lanes.setdefault(key(item), []).append(item)
    return list(lanes.values())


async def run_lanes(
    items: Sequence[T],
    key: Callable[[T], Hashable],
    work: Callable[[T], Awaitable[object]],
    *,
    limit: int,
) -> None:
    """Run ``work`` on every item: at most ``limit`` lanes at once, one item at a time per lane.

    Raises the first exception of any lane after all lanes have stopped; a lane that
    raised skips its remaining items, as an error ends the per-item path.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    gate = asyncio.Semaphore(limit)

    async def lane(queue: list[T]) -> None:
        async with gate:
            for item in queue:
                await work(item)

    results = await asyncio.gather(*(lane(q) for q in lanes_of(items, key)), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
