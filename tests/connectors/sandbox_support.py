"""Shared helpers for the sandbox tests: one sandbox per test on a random port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from handoff.connectors.sandbox import FaultConfig, RunningSandbox, start_sandbox

ZD_AUTH = httpx.BasicAuth("agent@example.com/token", "zd-token")
BEARER = {"Authorization": "Bearer test-token"}
INTERCOM = {**BEARER, "Intercom-Version": "2.16"}


@asynccontextmanager
async def running(**kwargs: Any) -> AsyncIterator[RunningSandbox]:
    kwargs.setdefault("faults", FaultConfig(seed=1))
    sandbox = await start_sandbox(**kwargs)
    try:
        yield sandbox
    finally:
        await sandbox.stop()


def ticket_body(conv: str = "conv-1", **extra: Any) -> dict[str, Any]:
    ticket = {
        "subject": "Refund for order 123",
        "comment": {"body": "Customer asks for a refund", "public": True},
        "requester": {"name": "Ana Silva", "email": "ana.silva@example.com"},
        "external_id": conv,
        "custom_fields": [{"id": 9001, "value": conv}],
        "tags": ["bot_escalated"],
        "priority": "high",
        "type": "problem",
        **extra,
    }
    return {"ticket": ticket}
