"""The worker's broker watch and wait: one log line per state change, backoff capped."""

from __future__ import annotations

import logging
import socket

import pytest

from handoff.worker import BrokerWatch, broker_addresses, wait_for_broker


def test_one_line_per_state_change(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    watch = BrokerWatch("kafka://b:9092", misses=2, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="handoff.worker"):
        for answered in [True, False, True, False, False, False, False, True, True]:
            now[0] += 3
            watch.observe(answered)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2  # a single miss is not an outage
    assert lines[0].startswith("broker connection lost broker=kafka://b:9092")
    assert lines[1] == "broker connection back broker=kafka://b:9092 after 9.0s"


def test_broker_addresses() -> None:
    assert broker_addresses("kafka://a:9092;kafka://b:9093") == [("a", 9092), ("b", 9093)]
    assert broker_addresses("a:1,b") == [("a", 1), ("b", 9092)]


def test_wait_for_broker_backs_off_and_gives_up(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    now = [0.0]
    delays: list[float] = []

    def sleep(d: float) -> None:
        delays.append(d)
        now[0] += d

    with caplog.at_level(logging.DEBUG, logger="handoff.worker"):
        ok = wait_for_broker(
            f"kafka://127.0.0.1:{port}", max_wait=30, max_delay=8, sleep=sleep, clock=lambda: now[0]
        )
    assert not ok
    assert delays[:5] == [0.5, 1.0, 2.0, 4.0, 8.0] and max(delays) == 8
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage().split(" broker=")[0] for r in warnings] == [
        "broker unreachable",
        "broker unreachable",
    ]


def test_wait_for_broker_returns_at_once_when_reachable(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with caplog.at_level(logging.INFO, logger="handoff.worker"):
            assert wait_for_broker(f"127.0.0.1:{s.getsockname()[1]}", sleep=lambda d: None)
    assert caplog.records == []
