"""Produce again until the broker takes it: a failed send never leaves the agent.

If an exception left a Faust agent's loop, Faust would acknowledge the input(s) being
handled (the last event of ``stream.events()``, every buffered event of
``stream.take_events``) though their state was never written, and a commit would skip them.
So the processor decides once, then hands the records to :func:`until_sent`, which retries
the same records with capped exponential backoff until every one is acknowledged; the
connector agents send each result and dead letter through it too (a vendor call is not
repeated for a failed send, its result is). A
retried batch may produce some records twice (those acknowledged before the failure);
commands carry deterministic ids and idempotency keys, so consumers drop the copies, and
a repeated dead letter names the same source offset.

Cancellation (a worker stopping) is not retried: it propagates at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


def backoff(attempt: int, *, base: float = 0.2, cap: float = 5.0) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): doubling, capped."""
    return min(cap, base * 2 ** (attempt - 1))


async def until_sent(
    send: Callable[[], Awaitable[object]],
    *,
    what: str,
    sleep: Sleep = asyncio.sleep,
    base: float = 0.2,
    cap: float = 5.0,
) -> int:
    """Await ``send()`` until it returns without raising; returns the attempts it took.

    Every failure logs one warning line naming ``what``, the attempt and the error.
    """
    attempt = 1
    while True:
        try:
            await send()
        except Exception as exc:  # any producer failure is retried
            delay = backoff(attempt, base=base, cap=cap)
            log.warning(
                "send failed for %s (attempt %d): %s: %s; retrying in %.1fs",
                what,
                attempt,
                type(exc).__name__,
                exc,
                delay,
            )
            await sleep(delay)
            attempt += 1
            continue
        if attempt > 1:
            log.info("send for %s went through at attempt %d", what, attempt)
        return attempt
