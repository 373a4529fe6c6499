"""The embedded broker's lifecycle and a produce/consume round trip through it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from handoff.broker import EmbeddedBroker, process
from handoff.broker.admin import answers_metadata
from handoff.exceptions import BrokerError

pytestmark = pytest.mark.integration

TopicFactory = Callable[..., Awaitable[str]]  # the conftest fixture's type


def _refuses_connections(port: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return True
        time.sleep(0.05)  # polling interval
    return False


def _port(bootstrap: str) -> int:
    return int(bootstrap.rsplit(":", 1)[1])


async def test_session_broker_answers_metadata(broker: EmbeddedBroker) -> None:
    assert broker.is_running()
    assert broker.bootstrap.startswith("127.0.0.1:")
    assert broker.url == f"kafka://{broker.bootstrap}"
    assert await answers_metadata(broker.bootstrap)


async def test_produce_consume_round_trip(
    broker: EmbeddedBroker, topic_factory: TopicFactory, unique_name: Callable[[str], str]
) -> None:
    topic = await topic_factory(partitions=3)
    sent = [(f"k{i % 4}".encode(), f"v{i}".encode()) for i in range(20)]
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in sent:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=unique_name("group"),
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
    )
    await consumer.start()
    received: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + 30
    try:
        while len(received) < len(sent) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                received += [(r.key, r.value) for r in records if r.key and r.value]
    finally:
        await consumer.stop()

    assert sorted(received) == sorted(sent)
    for key in {k for k, _ in sent}:  # per key, order survives (one key, one partition)
        assert [v for k, v in received if k == key] == [v for k, v in sent if k == key]


def test_second_broker_gets_its_own_port(broker: EmbeddedBroker) -> None:
    with EmbeddedBroker(quiet=True) as other:
        assert other.bootstrap != broker.bootstrap
        assert other.is_running()
    assert broker.is_running()


def test_stop_is_idempotent_and_reaps_the_process() -> None:
    instance = EmbeddedBroker()
    bootstrap = instance.start()
    pid = instance.pid
    assert pid is not None
    instance.stop()
    instance.stop()
    assert not instance.is_running()
    with pytest.raises(ProcessLookupError):  # reaped, not a zombie
        os.kill(pid, 0)
    assert _refuses_connections(_port(bootstrap))
    with pytest.raises(BrokerError, match="not running"):
        _ = instance.bootstrap


def test_stop_before_start_is_a_no_op() -> None:
    EmbeddedBroker().stop()


def test_nonexistent_binary_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOFF_BROKER_BIN", "/nonexistent/tansu")
    with pytest.raises(BrokerError, match="/nonexistent/tansu"):
        EmbeddedBroker().start()


def test_non_executable_binary_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("not a program")
    fake.chmod(0o644)
    monkeypatch.setenv("HANDOFF_BROKER_BIN", str(fake))
    with pytest.raises(BrokerError, match="not an executable"):
        EmbeddedBroker().start()


def test_binary_that_exits_raises_with_its_status(tmp_path: Path) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'no broker here' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(BrokerError, match=r"exited with status 3.*no broker here"):
        EmbeddedBroker(binary=fake, start_timeout=5).start()


def test_taken_port_is_retried_on_a_fresh_one(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        ports = iter([taken])
        real_free_port = process._free_port
        monkeypatch.setattr(process, "_free_port", lambda: next(ports, None) or real_free_port())
        with EmbeddedBroker() as instance:
            assert _port(instance.bootstrap) != taken
            assert instance.log_path is not None
            assert "AddrInUse" in instance.log_path.read_text()


def test_fixed_taken_port_raises() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        with pytest.raises(BrokerError, match="AddrInUse"):
            EmbeddedBroker(taken, start_timeout=3).start()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_broker_forever_prints_bootstrap_and_stops_on_signal(sig: signal.Signals) -> None:
    code = "import sys, handoff.broker as b; sys.exit(b.run_broker_forever())"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()  # blocks until the broker is ready
        assert line.startswith("bootstrap=127.0.0.1:"), line
        port = _port(line.removeprefix("bootstrap="))
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        proc.send_signal(sig)
        assert proc.wait(timeout=15) == 0
        assert _refuses_connections(port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
