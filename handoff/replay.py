"""``handoff replay FILE``: JSON lines of events into the input topic, keyed by conversation.

Lines are produced as they are, byte for byte: a line that is not a valid event still goes
in (keyed by its ``conversation_id`` when one can be read) so that the processor
dead-letters it with a reason, which is what a chat platform's bad record would meet.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer


def read_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        for line in fh:
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield line


def key_of(line: bytes) -> bytes | None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if isinstance(obj, dict) and isinstance(obj.get("conversation_id"), str):
        return obj["conversation_id"].encode("utf-8")
    return None


async def replay(
    bootstrap: str,
    topic: str,
    lines: Iterable[bytes],
    *,
    linger_ms: int = 5,
    security: Mapping[str, Any] | None = None,
) -> int:
    """Produce every line; return how many were acknowledged.

    ``security`` is ``KafkaSecurity.aiokafka_kwargs()`` (SASL/TLS); none means PLAINTEXT.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=linger_ms,
        acks="all",
        enable_idempotence=False,
        **dict(security or {}),
    )
    await producer.start()
    sent = 0
    try:
        futures = []
        for line in lines:
            futures.append(await producer.send(topic, value=line, key=key_of(line)))
        for fut in futures:
            await fut
            sent += 1
    finally:
        await producer.stop()
    return sent
