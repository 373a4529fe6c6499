"""Connector agents: commands in, vendor calls, ``connector-results`` (and dead letters) out.

One agent per command topic, in their own consumer group (``{app_id}-connectors``), so a
slow helpdesk never holds up the processor. Each agent takes a batch of commands and runs
up to ``HANDOFF_CONNECTOR_CONCURRENCY`` conversations at once, one command at a time per
conversation (:mod:`handoff.agents.lanes`), which keeps the order of commands per
conversation (a create before its updates).
A command whose vendor call fails after the last retry yields a ``failed`` result (the
conversation state records it) *and* a dead letter with the vendor's error, and the agent
moves on: a permanent failure never blocks the commands behind it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from handoff.agents.retry import until_sent
from handoff.streams.codec import dead_letter_message, encode
from handoff.streams.commands import ConnectorResult, CrmNoteCommand, TicketCommand
from handoff.streams.topics import TopicNames

log = logging.getLogger(__name__)

Send = Callable[[str, bytes, bytes], Awaitable[None]]


class Connector(Protocol):
    async def apply(self, cmd: Any) -> ConnectorResult: ...


class CommandHandler:
    """Runs one command through one connector and reports the outcome."""

    def __init__(
        self,
        *,
        model: type[TicketCommand] | type[CrmNoteCommand],
        connector: Callable[[], Awaitable[Connector | None]],
        topics: TopicNames,
        send: Send,
    ) -> None:
        self.model = model
        self.connector = connector
        self.topics = topics
        self.send = send
        self.handled = 0
        self.failed = 0

    async def handle(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> ConnectorResult | None:
        try:
            cmd: BaseModel = self.model.model_validate_json(value or b"")
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "(root)"
            await self._dead(topic, partition, offset, key, value, f"field '{loc}' {first['msg']}")
            return None
        connector = await self.connector()
        if connector is None:  # HANDOFF_HELPDESK / HANDOFF_CRM = none
            return None
        try:
            result = await connector.apply(cmd)
        except Exception as exc:  # a bug or an odd vendor answer must not stop the partition
            log.exception(
                "connector raised topic=%s partition=%d offset=%d", topic, partition, offset
            )
            result = self._raised(cmd, exc)
        self.handled += 1
        out_key = key or result.conversation_id.encode()
        await self._emit(self.topics.connector_results, out_key, encode(result))
        if result.status == "failed":
            self.failed += 1
            err = f"vendor call failed after {result.attempts} attempt(s): {result.error}"
            await self._dead(topic, partition, offset, key, value, err[:1000])
        return result

    async def _emit(self, topic: str, key: bytes, value: bytes) -> None:
        """Send until acknowledged (:mod:`handoff.agents.retry`): a failed send never drops a
        result, and the command is acknowledged only after its result is."""

        async def once() -> None:
            await self.send(topic, key, value)

        await until_sent(once, what=f"{topic} record")

    def _raised(self, cmd: BaseModel, exc: Exception) -> ConnectorResult:
        """A ``failed`` result for a connector that raised instead of reporting a failure."""
        return ConnectorResult(
            conversation_id=getattr(cmd, "conversation_id", ""),
            command_id=getattr(cmd, "command_id", ""),
            kind="ticket" if self.model is TicketCommand else "crm_note",
            status="failed",
            attempts=1,
            error=f"connector raised {type(exc).__name__}: {exc}"[:1000],
            idempotency_key=getattr(cmd, "idempotency_key", None),
        )

    async def _dead(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        error: str,
    ) -> None:
        await self._emit(
            *dead_letter_message(
                self.topics.dead_letters,
                source_topic=topic,
                partition=partition,
                offset=offset,
                key=key,
                value=value,
                error=error,
                now=datetime.now(UTC),
            )
        )
