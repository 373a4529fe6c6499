"""Fixtures for connector tests: a fake clock whose sleep advances it, command factories."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from handoff.connectors.config import RetryPolicy
from handoff.streams.commands import Contact, CrmNoteCommand, Requester, TicketCommand


class FakeTime:
    """Injected clock and sleep: sleeping only moves the clock and records the delay."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def policy() -> RetryPolicy:
    return RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=8.0, jitter=True, timeout=2.0)


def ticket_cmd(**kw: Any) -> TicketCommand:
    conv = kw.pop("conversation_id", "conv-1")
    base: dict[str, Any] = {
        "command_id": f"{conv}:cmd:1",
        "idempotency_key": f"{conv}:escalation:1",
        "conversation_id": conv,
        "requester": Requester(email="  Ana@Example.COM ", name="Ana"),
        "subject": "Refund for order 42",
        "intent": "refund",
        "priority": "high",
        "ticket_type": "problem",
        "custom_fields": {"order_id": "42", "plan_tier": "pro"},
        "tags_add": ["bot_escalated", "intent_refund", "lang_pt"],
        "private_note": "- wants a refund\n- order 42",
        "public_description": "You asked for a refund of order 42.",
        "transcript_ref": f"transcripts/{conv}",
        "disposition": "escalated_to_agent",
    }
    base.update(kw)
    return TicketCommand(**base)


def note_cmd(**kw: Any) -> CrmNoteCommand:
    conv = kw.pop("conversation_id", "conv-1")
    base: dict[str, Any] = {
        "command_id": f"{conv}:note:1",
        "idempotency_key": f"{conv}:crm-note",
        "conversation_id": conv,
        "contact": Contact(email=" Ana@Example.com"),
        "body": "Ana asked for a refund of order 42.\nTicket: https://t.example/agent/tickets/100",
        "disposition": "escalated_to_agent",
        "ticket_url": "https://t.example/agent/tickets/100",
    }
    base.update(kw)
    return CrmNoteCommand(**base)


@pytest.fixture
def make_ticket_cmd() -> Callable[..., TicketCommand]:
    return ticket_cmd


@pytest.fixture
def make_note_cmd() -> Callable[..., CrmNoteCommand]:
    return note_cmd
