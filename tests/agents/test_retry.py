"""until_sent: the same records again until acknowledged; cancellation is not retried."""

from __future__ import annotations

import asyncio
import logging

import pytest

from handoff.agents.retry import backoff, until_sent


def test_backoff_doubles_from_the_base_and_stops_at_the_cap() -> None:
    assert [backoff(n, base=0.2, cap=5.0) for n in range(1, 9)] == [
        0.2,
        0.4,
        0.8,
        1.6,
        3.2,
        5.0,
        5.0,
        5.0,
    ]


async def test_until_sent_retries_with_backoff_and_logs_each_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0
    slept: list[float] = []

    async def send() -> None:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise ConnectionError(f"broker gone #{calls}")

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    with caplog.at_level(logging.WARNING, logger="handoff.agents.retry"):
        attempts = await until_sent(send, what="events[2]@17", sleep=sleep)
    assert attempts == calls == 4
    assert slept == [0.2, 0.4, 0.8]
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 3
    assert "events[2]@17" in lines[0] and "ConnectionError: broker gone #1" in lines[0]


async def test_until_sent_does_not_retry_a_cancellation() -> None:
    calls = 0

    async def send() -> None:
        nonlocal calls
        calls += 1
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await until_sent(send, what="x", sleep=lambda s: asyncio.sleep(0))
    assert calls == 1
