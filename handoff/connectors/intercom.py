"""Intercom connector (REST API 2.16): the chat already lives in Intercom, so it becomes a ticket.

Which conversation: ``cmd.custom_fields["intercom_conversation_id"]`` when the bot stored
it, else ``cmd.conversation_id`` itself (deployments where our conversation id *is* the
Intercom id). The 2.16 spec types that path parameter as an integer, so anything else is
a permanent failure rather than a guess.

Never converted twice: ``GET /conversations/{id}`` is read first; a conversation that
already has a ticket (its ``ticket`` object, or a ``linked_objects`` entry of type
``ticket``) is *found* and updated. Only otherwise ``POST /conversations/{id}/convert``
runs, and because Intercom has no idempotency key, the conversation is read again before
every retry of the convert: a convert whose answer was lost is then found, not repeated.

Internal notes go through ``POST /conversations/{id}/reply`` (``message_type: note``).
A retried reply would add a second note, so each note ends with ``[handoff:<command_id>]``
and is skipped when a conversation part already carries it (checked before the first
send and before each retry; the retrieve returns the 500 most recent parts). Ticket
updates are ``PUT /tickets/{ticket_id}``, which leaves the same state when repeated.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import httpx

from handoff.connectors.config import IntercomConfig, RateLimit, RetryPolicy
from handoff.connectors.http import Reply, Sleep, VendorConnector, attempts_of
from handoff.connectors.zendesk import marker
from handoff.exceptions import ConnectorError, PermanentError
from handoff.streams.commands import ConnectorResult, TicketCommand


def linked_ticket_id(conversation: Any) -> str | None:
    """The id of the ticket a conversation was converted to, if any."""
    if not isinstance(conversation, dict):
        return None
    ticket = conversation.get("ticket")
    if isinstance(ticket, dict) and ticket.get("id"):
        return str(ticket["id"])
    linked = conversation.get("linked_objects") or {}
    for obj in linked.get("data") or () if isinstance(linked, dict) else ():
        if isinstance(obj, dict) and obj.get("type") == "ticket" and obj.get("id"):
            return str(obj["id"])
    return None


def note_html(text: str, command_id: str) -> str:
    lines = [html.escape(line) for line in text.splitlines()]
    return "<p>" + "<br>".join(lines) + f"</p><p>{html.escape(marker(command_id))}</p>"


class IntercomConnector(VendorConnector):
    """Applies TicketCommands to Intercom conversations; ``apply`` never raises for vendor
    errors."""

    def __init__(
        self,
        config: IntercomConfig,
        client: httpx.AsyncClient,
        *,
        retry: RetryPolicy | None = None,
        rate_limit: RateLimit | None = None,
        sleep: Sleep | None = None,
        clock: Callable[[], float] | None = None,
        random: Callable[[], float] | None = None,
        owns_client: bool = False,
    ) -> None:
        self.config = config
        token = config.token.get_secret_value()
        super().__init__(
            client,
            vendor="intercom",
            base_url=config.base_url,
            headers={"Authorization": f"Bearer {token}", "Intercom-Version": config.version},
            secrets=(token,),
            timeout=config.timeout,
            retry=retry,
            rate_limit=rate_limit,
            sleep=sleep,
            clock=clock,
            random=random,
            owns_client=owns_client,
        )

    @staticmethod
    def conversation_ref(cmd: TicketCommand) -> str:
        return str(cmd.custom_fields.get("intercom_conversation_id") or cmd.conversation_id)

    async def apply(self, cmd: TicketCommand) -> ConnectorResult:
        """Convert (or find) the conversation's ticket, add the note, update the ticket."""
        try:
            return await self._apply(cmd)
        except ConnectorError as err:
            return self._result(cmd, "failed", cmd.ticket_id, attempts_of(err), error=str(err))

    async def _apply(self, cmd: TicketCommand) -> ConnectorResult:
        conv = self.conversation_ref(cmd)
        if not conv.isdigit():
            raise PermanentError(f"intercom: {conv!r} is not an Intercom conversation id")
        conversation = await self._conversation(conv)
        ticket_id = cmd.ticket_id or linked_ticket_id(conversation)
        if ticket_id is None:
            ticket_id, attempts = await self._convert(conv, cmd)
            await self._add_note(conv, cmd, None)
            return self._result(cmd, "created", ticket_id, attempts)
        await self._add_note(conv, cmd, conversation)
        attempts = await self._update_ticket(ticket_id, cmd)
        return self._result(cmd, "updated", ticket_id, attempts)

    async def _conversation(self, conv: str) -> dict[str, Any]:
        reply = await self.http.request("GET", f"/conversations/{conv}")
        return reply.body if isinstance(reply.body, dict) else {}

    async def _convert(self, conv: str, cmd: TicketCommand) -> tuple[str, int]:
        type_id = self.config.ticket_type_ids.get(cmd.intent or "")
        body = {
            "ticket_type_id": type_id or self.config.default_ticket_type_id,
            "attributes": {
                "_default_title_": cmd.subject,
                "_default_description_": cmd.public_description or cmd.subject,
            },
        }
        path = f"/conversations/{conv}/convert"

        async def send(attempt: int) -> Reply:
            return await self.http.send_once("POST", path, json=body, attempt=attempt)

        async def recheck() -> Reply | None:
            found = linked_ticket_id(await self._conversation(conv))
            return Reply(200, httpx.Headers(), {"id": found}) if found else None

        done = await self.http.with_retries(send, recheck=recheck)
        ticket_id = done.value.get("id")
        if not ticket_id:
            raise PermanentError(f"intercom POST {path}: no ticket id in the answer")
        return str(ticket_id), done.attempts

    async def _add_note(
        self, conv: str, cmd: TicketCommand, conversation: dict[str, Any] | None
    ) -> None:
        mark = marker(cmd.command_id)
        if conversation is not None and _has_marker(conversation, mark):
            return
        body = {
            "message_type": "note",
            "type": "admin",
            "admin_id": self.config.admin_id,
            "body": note_html(cmd.private_note, cmd.command_id),
        }
        path = f"/conversations/{conv}/reply"

        async def send(attempt: int) -> Reply:
            return await self.http.send_once("POST", path, json=body, attempt=attempt)

        async def recheck() -> Reply | None:
            current = await self._conversation(conv)
            return Reply(200, httpx.Headers(), current) if _has_marker(current, mark) else None

        await self.http.with_retries(send, recheck=recheck)

    async def _update_ticket(self, ticket_id: str, cmd: TicketCommand) -> int:
        body: dict[str, Any] = {"ticket_attributes": {"_default_title_": cmd.subject}}
        if cmd.disposition == "resolved":
            body["open"] = False
        elif cmd.disposition == "reopened":
            body["open"] = True
        reply = await self.http.request("PUT", f"/tickets/{ticket_id}", json=body)
        return reply.attempts

    def _result(
        self,
        cmd: TicketCommand,
        status: Any,
        ticket_id: str | None,
        attempts: int,
        *,
        error: str | None = None,
    ) -> ConnectorResult:
        url = None
        if ticket_id and self.config.ticket_url_template:
            url = self.config.ticket_url_template.format(ticket_id=ticket_id)
        return ConnectorResult(
            conversation_id=cmd.conversation_id,
            command_id=cmd.command_id,
            kind="ticket",
            status=status,
            external_id=ticket_id,
            url=url,
            attempts=attempts,
            error=error,
            idempotency_key=cmd.idempotency_key,
        )


def _has_marker(conversation: dict[str, Any], mark: str) -> bool:
    parts = conversation.get("conversation_parts") or {}
    items = parts.get("conversation_parts") if isinstance(parts, dict) else None
    escaped = html.escape(mark)
    for part in items or ():
        body = part.get("body") if isinstance(part, dict) else None
        if isinstance(body, str) and (mark in body or escaped in body):
            return True
    return False
