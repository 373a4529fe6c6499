"""Real Apache Kafka through testcontainers (PLAINTEXT).

Runs where a Docker engine answers and ``testcontainers`` is installed; otherwise every test
here is skipped with the reason. The embedded-broker tests cover the pipeline; these check
what only real Kafka can: the topic layout of docs/deployment.md, and the replay producer
and the Rasa bridge against the real protocol.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

pytestmark = pytest.mark.integration

KAFKA_IMAGE = "apache/kafka:3.8.0"
SAMPLES = Path(__file__).resolve().parents[1] / "adapters" / "samples"


def _docker_unavailable() -> str | None:
    """Why no Docker engine answers here, or None when one does."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host and not Path("/var/run/docker.sock").exists():
        return "no Docker engine: /var/run/docker.sock does not exist and DOCKER_HOST is unset"
    if shutil.which("docker") is None:
        return "no docker CLI to ask whether the engine answers"
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=15,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`docker info` failed: {exc}"
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no Docker engine answers `docker info`: {last}"
    return None


def _skip_reason() -> str | None:
    docker = _docker_unavailable()
    if importlib.util.find_spec("testcontainers") is None:
        missing = "testcontainers is not installed (pip install 'testcontainers[kafka]')"
        return f"{docker}; and {missing}" if docker else missing
    return docker


@pytest.fixture(scope="module")
def kafka_bootstrap() -> Iterator[str]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer(KAFKA_IMAGE).with_kraft() as kafka:
        yield kafka.get_bootstrap_server()


async def _create(bootstrap: str, topics: dict[str, int]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, n, 1) for t, n in topics.items()])
    finally:
        await admin.close()


async def test_deployment_topic_layout(kafka_bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    prefix = f"t{uuid4().hex[:6]}-"
    layout = {
        f"{prefix}conversation-events": 12,
        f"{prefix}connector-results": 12,
        f"{prefix}ticket-commands": 12,
        f"{prefix}crm-commands": 12,
        f"{prefix}dead-letters": 3,
    }
    await _create(kafka_bootstrap, layout)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(layout))
    finally:
        await admin.close()
    assert {d["topic"]: len(d["partitions"]) for d in described} == layout


async def test_replay_then_read_back(kafka_bootstrap: str) -> None:
    from handoff.progress import read_all
    from handoff.replay import read_lines, replay

    topic = f"events-{uuid4().hex[:8]}"
    await _create(kafka_bootstrap, {topic: 12})
    sample = Path(__file__).resolve().parents[2] / "handoff" / "data" / "sample_conversations.jsonl"
    lines = list(read_lines(sample))
    assert await replay(kafka_bootstrap, topic, lines) == len(lines)
    got = await asyncio.wait_for(read_all(kafka_bootstrap, topic), 60)
    assert sorted(got) == sorted(lines)


async def test_rasa_bridge_on_real_kafka(kafka_bootstrap: str) -> None:
    from aiokafka import AIOKafkaProducer

    from handoff.adapters.bridge import run_bridge
    from handoff.progress import read_all
    from handoff.settings import Settings

    prefix = f"r{uuid4().hex[:6]}-"
    settings = Settings(broker=f"kafka://{kafka_bootstrap}", topic_prefix=prefix)
    rasa_topic = f"{prefix}rasa_core_events"
    names = settings.topics
    await _create(kafka_bootstrap, {rasa_topic: 1, names.events: 12, names.dead_letters: 3})
    good = (SAMPLES / "rasa_tracker_events.jsonl").read_bytes().splitlines()
    bad = (SAMPLES / "rasa_bad_events.jsonl").read_bytes().splitlines()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for line in good + bad:
            await producer.send_and_wait(rasa_topic, line)
    finally:
        await producer.stop()
    stop = asyncio.Event()
    task = asyncio.create_task(run_bridge(settings, rasa_topic, stop=stop))
    deadline = asyncio.get_running_loop().time() + 60
    while len(await read_all(kafka_bootstrap, names.dead_letters)) < len(bad):
        assert asyncio.get_running_loop().time() < deadline, "bridge produced no dead letters"
        await asyncio.sleep(0.5)  # polling interval, not synchronisation
    stop.set()
    stats = await asyncio.wait_for(task, 30)
    assert (stats.records, stats.events, stats.dead_letters) == (21, 11, 6)
    assert len(await read_all(kafka_bootstrap, names.events)) == 11
