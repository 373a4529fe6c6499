"""Poison records: one that makes processing raise is dead-lettered and the partition goes on.

The processor and the connector handler are driven directly, with a recording ``send``
and a dict for the table: no Faust, no broker.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

import handoff.agents.processor as processor_module
from handoff.agents.connectors import CommandHandler
from handoff.agents.processor import Processor
from handoff.core.decide import apply_event
from handoff.exceptions import PermanentError
from handoff.streams.codec import decode_event
from handoff.streams.commands import ConnectorResult, TicketCommand
from handoff.streams.topics import TopicNames
from handoff.tables.conversations import ConversationTable
from handoff.worker import DEFAULT_POLICY, load_policy

ROOT = Path(__file__).resolve().parents[2]
NAMES = TopicNames()
NOW = datetime(2026, 12, 1, tzinfo=UTC)


class Outbox:
    """A fake ``send`` that records what was produced, by topic."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def __call__(self, topic: str, key: bytes, value: bytes) -> None:
        self.sent.append((topic, key, value))

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [orjson.loads(v) for t, _, v in self.sent if t == topic]


def _sample(conversation: str) -> list[bytes]:
    lines = (ROOT / "handoff" / "data" / "sample_conversations.jsonl").read_bytes().splitlines()
    return [x for x in lines if x.strip() and orjson.loads(x)["conversation_id"] == conversation]


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def processor(outbox: Outbox) -> Processor:
    return Processor(
        table=ConversationTable({}),
        policy=load_policy(DEFAULT_POLICY),
        topics=NAMES,
        send=outbox,
        max_event_bytes=64 * 1024,
        clock=lambda: NOW,
    )


async def test_an_event_that_makes_the_core_raise_is_dead_lettered_and_the_rest_go_on(
    processor: Processor, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _sample("conv-7-000004")
    poison_id = orjson.loads(events[1])["event_id"]
    real = processor_module.apply_event

    def flaky_core(state: Any, event: Any, now: Any, policy: Any) -> Any:
        if event.event_id == poison_id:
            raise ZeroDivisionError("division by zero in a policy rule")
        return real(state, event, now, policy)

    monkeypatch.setattr(processor_module, "apply_event", flaky_core)
    key = b"conv-7-000004"
    for offset, raw in enumerate(events):
        await processor.handle(NAMES.events, 2, offset, key, raw)

    dead = outbox.on(NAMES.dead_letters)
    assert len(dead) == 1
    assert dead[0]["offset"] == 1 and dead[0]["partition"] == 2
    assert "ZeroDivisionError" in dead[0]["error"]
    assert base64.b64decode(dead[0]["value"]) == events[1]
    state = processor.table.get(key)
    assert state is not None
    assert poison_id not in state.applied_ids
    assert len(state.applied_ids) == len(events) - 1  # every other event was applied


async def test_a_connector_result_that_makes_the_core_raise_is_dead_lettered(
    processor: Processor, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> Any:
        raise KeyError("ticket_id")

    monkeypatch.setattr(processor_module, "apply_result", broken)
    result = ConnectorResult(
        conversation_id="c1", command_id="x", kind="ticket", status="created", external_id="9"
    )
    raw = orjson.dumps(result.model_dump(mode="json"))
    assert await processor.handle(NAMES.connector_results, 0, 5, b"c1", raw) is None
    [dead] = outbox.on(NAMES.dead_letters)
    assert dead["source_topic"] == NAMES.connector_results and "KeyError" in dead["error"]


def _ticket_commands() -> Iterator[TicketCommand]:
    policy = load_policy(DEFAULT_POLICY)
    lines = (ROOT / "handoff" / "data" / "sample_conversations.jsonl").read_bytes().splitlines()
    states: dict[str, Any] = {}
    for line in lines:
        if not line.strip():
            continue
        ev = decode_event(line)
        d = apply_event(states.get(ev.conversation_id), ev, NOW, policy)
        states[ev.conversation_id] = d.state
        yield from (c for c in d.commands if isinstance(c, TicketCommand))


class FakeHelpdesk:
    """Fails the first command permanently (or raises), then works; records what it got."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.seen: list[str] = []

    async def apply(self, cmd: TicketCommand) -> ConnectorResult:
        self.seen.append(cmd.command_id)
        if len(self.seen) == 1:
            if self.mode == "raise":
                raise ValueError("unexpected vendor answer: no 'ticket' in body")
            err = PermanentError("422 RecordInvalid: requester email invalid", status=422)
            return ConnectorResult(
                conversation_id=cmd.conversation_id,
                command_id=cmd.command_id,
                kind="ticket",
                status="failed",
                attempts=1,
                error=str(err),
            )
        return ConnectorResult(
            conversation_id=cmd.conversation_id,
            command_id=cmd.command_id,
            kind="ticket",
            status="created",
            external_id=str(len(self.seen)),
        )


@pytest.mark.parametrize("mode", ["failed_result", "raise"])
async def test_a_permanently_failing_command_does_not_block_the_ones_behind_it(
    outbox: Outbox, mode: str
) -> None:
    helpdesk = FakeHelpdesk(mode)

    async def connector() -> FakeHelpdesk:
        return helpdesk

    handler = CommandHandler(model=TicketCommand, connector=connector, topics=NAMES, send=outbox)
    cmds = list(_ticket_commands())[:4]
    assert len(cmds) == 4
    for offset, cmd in enumerate(cmds):
        raw = orjson.dumps(cmd.model_dump(mode="json"))
        await handler.handle(NAMES.ticket_commands, 0, offset, cmd.conversation_id.encode(), raw)

    assert helpdesk.seen == [c.command_id for c in cmds]  # every command reached the vendor
    results = outbox.on(NAMES.connector_results)
    assert [r["status"] for r in results] == ["failed", "created", "created", "created"]
    assert results[0]["conversation_id"] == cmds[0].conversation_id
    [dead] = outbox.on(NAMES.dead_letters)
    assert dead["offset"] == 0 and dead["source_topic"] == NAMES.ticket_commands
    assert ("ValueError" if mode == "raise" else "422") in dead["error"]
    assert handler.failed == 1 and handler.handled == 4


async def test_a_malformed_command_is_dead_lettered_naming_the_field(outbox: Outbox) -> None:
    async def connector() -> None:
        raise AssertionError("a malformed command never reaches the vendor")

    handler = CommandHandler(model=TicketCommand, connector=connector, topics=NAMES, send=outbox)
    assert await handler.handle(NAMES.ticket_commands, 1, 7, b"c", b'{"schema_version": 1}') is None
    [dead] = outbox.on(NAMES.dead_letters)
    assert dead["error"].startswith("field '")


async def test_a_result_whose_send_fails_is_sent_again_not_dropped(outbox: Outbox) -> None:
    helpdesk = FakeHelpdesk("failed_result")
    helpdesk.seen.append("warm")  # past its one failure: every command now works
    fails = 2

    async def flaky(topic: str, key: bytes, value: bytes) -> None:
        nonlocal fails
        if fails:
            fails -= 1
            raise ConnectionError("broker gone")
        await outbox(topic, key, value)

    async def connector() -> FakeHelpdesk:
        return helpdesk

    handler = CommandHandler(model=TicketCommand, connector=connector, topics=NAMES, send=flaky)
    cmd = next(iter(_ticket_commands()))
    raw = orjson.dumps(cmd.model_dump(mode="json"))
    await handler.handle(NAMES.ticket_commands, 0, 0, cmd.conversation_id.encode(), raw)
    assert helpdesk.seen == ["warm", cmd.command_id]  # the vendor was called once
    [result] = outbox.on(NAMES.connector_results)  # and its result got through
    assert result["command_id"] == cmd.command_id and result["status"] == "created"
