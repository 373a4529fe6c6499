"""Zendesk Support connector: one ticket per conversation, through retries and redelivery.

Search before create, in this order, each step only able to *find*:

1. ``GET /api/v2/tickets?external_id=<conversation_id>``: consistent, our primary key.
2. ``GET /api/v2/search`` on the ``bot_conversation_id`` custom field: lags by minutes, so
   an empty answer proves nothing; it catches tickets whose external id an agent changed.
3. Cross-conversation dedupe: an unsolved ticket of the same requester (normalized e-mail)
   with the tag ``intent_<x>``, created within ``dedupe_window_minutes``, whose dedupe
   fields (``order_id``, ``invoice_id``) share at least one value with the command and
   contradict none. Found -> status ``deduplicated`` and a private note naming both
   conversations on the existing ticket.

Found by 1 or 2 -> update. Otherwise ``POST /api/v2/tickets`` with ``Idempotency-Key``
set to ``cmd.idempotency_key``: a create whose response was lost is retried with the same
key and Zendesk answers with the ticket it already made (``x-idempotency-lookup: hit``).

Updates never send ``tags`` in the ticket PUT (that replaces the agents' tags); tags go
through ``PUT /api/v2/tickets/{id}/tags``, which adds. Comments are not idempotent in
Zendesk, so every private note ends with the marker ``[handoff:<command_id>]`` and is
only added when ``GET /api/v2/tickets/{id}/comments`` shows no comment with that marker
(checked before the first send and before every retry). Priority and type are set on
create only; later they belong to the agents.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from handoff.connectors.config import RateLimit, RetryPolicy, ZendeskConfig
from handoff.connectors.http import Reply, Sleep, VendorConnector, attempts_of
from handoff.exceptions import ConnectorError, PermanentError
from handoff.streams.commands import ConnectorResult, TicketCommand

OPEN_STATUSES = frozenset({"new", "open", "pending", "hold"})
MAX_COMMENT_PAGES = 20


def marker(command_id: str) -> str:
    return f"[handoff:{command_id}]"


def normalize_email(email: str | None) -> str | None:
    return email.strip().lower() or None if email else None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _field_value(ticket: dict[str, Any], field_id: int) -> Any:
    for item in ticket.get("custom_fields") or ():
        if isinstance(item, dict) and item.get("id") == field_id:
            return item.get("value")
    return None


def _same(a: Any, b: Any) -> bool:
    return a not in (None, "") and b not in (None, "") and str(a) == str(b)


class ZendeskConnector(VendorConnector):
    """Applies TicketCommands to Zendesk; ``apply`` never raises for vendor failures."""

    def __init__(
        self,
        config: ZendeskConfig,
        client: httpx.AsyncClient,
        *,
        retry: RetryPolicy | None = None,
        rate_limit: RateLimit | None = None,
        sleep: Sleep | None = None,
        clock: Callable[[], float] | None = None,
        random: Callable[[], float] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        owns_client: bool = False,
    ) -> None:
        self.config = config
        token = config.api_token.get_secret_value()
        basic = base64.b64encode(f"{config.email}/token:{token}".encode()).decode()
        super().__init__(
            client,
            vendor="zendesk",
            base_url=config.base_url,
            headers={"Authorization": f"Basic {basic}"},
            secrets=(token, basic),
            timeout=config.timeout,
            retry=retry,
            rate_limit=rate_limit,
            sleep=sleep,
            clock=clock,
            random=random,
            owns_client=owns_client,
        )
        self._now = now

    # ---- public API ----------------------------------------------------------------

    async def apply(self, cmd: TicketCommand) -> ConnectorResult:
        """Create, update or deduplicate the conversation's ticket; failures become results."""
        try:
            return await self._apply(cmd)
        except ConnectorError as err:
            return self._result(cmd, "failed", None, attempts_of(err), error=str(err))

    async def apply_many(self, cmds: Sequence[TicketCommand]) -> list[ConnectorResult]:
        """Apply a batch, coalescing update commands per ticket (Zendesk: 30 updates/10 min).

        Updates that name a ``ticket_id`` are grouped by ticket in first-seen order and sent
        as one PUT: notes joined in command order (each keeps its marker), custom fields
        merged with later values winning, tags added in first-seen order. Creates and updates
        without a ticket id run alone, in batch order. Results come back in input order.
        """
        groups: list[list[TicketCommand]] = []
        by_ticket: dict[str, list[TicketCommand]] = {}
        for cmd in cmds:
            if cmd.ticket_id and cmd.action == "update":
                if cmd.ticket_id not in by_ticket:
                    by_ticket[cmd.ticket_id] = []
                    groups.append(by_ticket[cmd.ticket_id])
                by_ticket[cmd.ticket_id].append(cmd)
            else:
                groups.append([cmd])
        results: dict[str, ConnectorResult] = {}
        for group in groups:
            if len(group) == 1:
                results[group[0].command_id] = await self.apply(group[0])
                continue
            ticket_id = group[0].ticket_id or ""
            try:
                attempts = await self._update(ticket_id, group)
                for cmd in group:
                    results[cmd.command_id] = self._result(cmd, "updated", ticket_id, attempts)
            except ConnectorError as err:
                for cmd in group:
                    results[cmd.command_id] = self._result(
                        cmd, "failed", ticket_id, attempts_of(err), error=str(err)
                    )
        return [results[c.command_id] for c in cmds]

    # ---- decisions -----------------------------------------------------------------

    async def _apply(self, cmd: TicketCommand) -> ConnectorResult:
        if cmd.ticket_id:
            attempts = await self._update(cmd.ticket_id, [cmd])
            return self._result(cmd, "updated", cmd.ticket_id, attempts)
        own = await self._find_by_external_id(cmd) or await self._find_by_search(cmd)
        if own is not None:
            attempts = await self._update(own, [cmd])
            return self._result(cmd, "updated", own, attempts)
        duplicate = await self._find_duplicate(cmd)
        if duplicate is not None:
            ticket_id, other = duplicate
            note = (
                f"Conversation {cmd.conversation_id} was escalated for the same request "
                f"(intent {cmd.intent}); it is handled here, in the ticket of conversation "
                f"{other}.\n\n{cmd.private_note}"
            )
            attempts = await self._update(ticket_id, [cmd], note_override=note)
            return self._result(cmd, "deduplicated", ticket_id, attempts)
        ticket_id, attempts = await self._create(cmd)
        return self._result(cmd, "created", ticket_id, attempts)

    async def _find_by_external_id(self, cmd: TicketCommand) -> str | None:
        reply = await self.http.request(
            "GET", "/api/v2/tickets", params={"external_id": cmd.conversation_id}
        )
        tickets = [
            t
            for t in reply.get("tickets") or ()
            if isinstance(t, dict) and t.get("external_id") == cmd.conversation_id
        ]
        return _oldest(tickets)

    async def _find_by_search(self, cmd: TicketCommand) -> str | None:
        field_id = self.config.bot_conversation_id_field_id
        query = f"type:ticket custom_field_{field_id}:{cmd.conversation_id}"
        reply = await self.http.request("GET", "/api/v2/search", params={"query": query})
        hits = [
            r
            for r in reply.get("results") or ()
            if isinstance(r, dict)
            and r.get("result_type", "ticket") == "ticket"
            # Search matches loosely; only trust a hit whose field really holds our id.
            and _same(_field_value(r, field_id), cmd.conversation_id)
        ]
        return _oldest(hits)

    async def _find_duplicate(self, cmd: TicketCommand) -> tuple[str, str] | None:
        email = normalize_email(cmd.requester.email)
        keys = {
            self.config.custom_field_ids[name]: cmd.custom_fields[name]
            for name in self.config.dedupe_fields
            if name in self.config.custom_field_ids
            and cmd.custom_fields.get(name) not in (None, "")
        }
        if not email or not cmd.intent or not keys:
            return None
        query = f"type:ticket requester:{email} status<solved tags:intent_{cmd.intent}"
        reply = await self.http.request(
            "GET",
            "/api/v2/search",
            params={"query": query, "sort_by": "created_at", "sort_order": "asc"},
        )
        since = self._now() - timedelta(minutes=self.config.dedupe_window_minutes)
        matches = []
        for t in reply.get("results") or ():
            if not isinstance(t, dict) or t.get("result_type", "ticket") != "ticket":
                continue
            created = _parse_time(t.get("created_at"))
            if t.get("status") not in OPEN_STATUSES or created is None or created < since:
                continue
            if f"intent_{cmd.intent}" not in (t.get("tags") or ()):
                continue
            values = {fid: _field_value(t, fid) for fid in keys}
            shared = [fid for fid in keys if _same(values[fid], keys[fid])]
            clash = [
                fid
                for fid in keys
                if values[fid] not in (None, "") and str(values[fid]) != str(keys[fid])
            ]
            if shared and not clash:
                matches.append(t)
        found = _oldest(matches)
        if found is None:
            return None
        ticket = next(t for t in matches if str(t.get("id")) == found)
        bot_field = self.config.bot_conversation_id_field_id
        other = ticket.get("external_id") or _field_value(ticket, bot_field) or "unknown"
        return found, str(other)

    # ---- writes --------------------------------------------------------------------

    async def _create(self, cmd: TicketCommand) -> tuple[str, int]:
        field_id = self.config.bot_conversation_id_field_id
        custom = [{"id": field_id, "value": cmd.conversation_id}, *self._mapped_fields(cmd)]
        ticket: dict[str, Any] = {
            "subject": cmd.subject,
            "comment": {"body": cmd.public_description or cmd.subject, "public": True},
            "requester": _requester(cmd),
            "external_id": cmd.conversation_id,
            "custom_fields": custom,
            "priority": cmd.priority,
            "type": cmd.ticket_type,
        }
        if cmd.tags_add:
            ticket["tags"] = list(dict.fromkeys(cmd.tags_add))  # a new ticket: set == add
        reply = await self.http.request(
            "POST",
            "/api/v2/tickets",
            json={"ticket": ticket},
            headers={"Idempotency-Key": cmd.idempotency_key},
        )
        created = reply.get("ticket") or {}
        ticket_id = str(created.get("id") or "")
        if not ticket_id:
            raise PermanentError(f"zendesk POST /api/v2/tickets -> {reply.status}: no ticket id")
        # The agent summary goes in as a private note; the comment check makes it safe
        # when this create was a replay (lookup hit) of a run that got that far before.
        fresh = reply.headers.get("x-idempotency-lookup", "").lower() == "miss"
        await self._put_update(ticket_id, [cmd], None, check_existing=not fresh)
        return ticket_id, reply.attempts

    async def _update(
        self,
        ticket_id: str,
        cmds: Sequence[TicketCommand],
        *,
        note_override: str | None = None,
    ) -> int:
        attempts = await self._put_update(ticket_id, cmds, note_override, check_existing=True)
        tags = list(dict.fromkeys(t for c in cmds for t in c.tags_add))
        if tags:
            await self.http.request("PUT", f"/api/v2/tickets/{ticket_id}/tags", json={"tags": tags})
        return attempts

    async def _put_update(
        self,
        ticket_id: str,
        cmds: Sequence[TicketCommand],
        note_override: str | None,
        *,
        check_existing: bool,
    ) -> int:
        """One ticket PUT: custom fields plus the notes not already on the ticket."""
        markers = {c.command_id: marker(c.command_id) for c in cmds}
        present = (
            await self._markers_present(ticket_id, markers.values()) if check_existing else set()
        )
        notes = [
            f"{note_override if note_override is not None else c.private_note}\n\n"
            f"{markers[c.command_id]}"
            for c in cmds
            if markers[c.command_id] not in present
        ]
        fields: dict[int, Any] = {}
        for c in cmds:
            fields.update({f["id"]: f["value"] for f in self._mapped_fields(c)})
        ticket: dict[str, Any] = {}
        if fields:
            ticket["custom_fields"] = [{"id": k, "value": v} for k, v in fields.items()]
        if notes:
            ticket["comment"] = {"body": "\n\n---\n\n".join(notes), "public": False}
        if not ticket:
            return 1
        path = f"/api/v2/tickets/{ticket_id}"

        async def send(attempt: int) -> Reply:
            return await self.http.send_once("PUT", path, json={"ticket": ticket}, attempt=attempt)

        async def recheck() -> Reply | None:
            # A PUT whose answer was lost may have added the comment: look before resending.
            if not notes:
                return None
            seen = await self._markers_present(ticket_id, markers.values())
            if all(m in seen for m in markers.values()):
                return Reply(200, httpx.Headers(), {"ticket": {"id": ticket_id}})
            return None

        done = await self.http.with_retries(send, recheck=recheck)
        return done.attempts

    async def _markers_present(self, ticket_id: str, wanted: Any) -> set[str]:
        wanted = set(wanted)
        seen: set[str] = set()
        path: str | None = f"/api/v2/tickets/{ticket_id}/comments"
        params: dict[str, Any] | None = None
        for _ in range(MAX_COMMENT_PAGES):
            if path is None:
                break
            reply = await self.http.request("GET", path, params=params)
            for comment in reply.get("comments") or ():
                if not isinstance(comment, dict):
                    continue
                text = " ".join(
                    str(comment.get(k) or "") for k in ("body", "plain_body", "html_body")
                )
                seen.update(m for m in wanted if m in text)
            if seen == wanted:
                break
            path, params = self._next_page(reply.get("next_page"))
        return seen

    def _next_page(self, url: Any) -> tuple[str | None, dict[str, Any] | None]:
        if not isinstance(url, str) or not url:
            return None, None
        parts = urlsplit(url)
        base_path = urlsplit(self.config.base_url).path.rstrip("/")
        path = parts.path[len(base_path) :] if parts.path.startswith(base_path) else parts.path
        params = dict(httpx.QueryParams(parts.query))
        return path, params

    # ---- helpers -------------------------------------------------------------------

    def _mapped_fields(self, cmd: TicketCommand) -> list[dict[str, Any]]:
        ids = self.config.custom_field_ids
        values = dict(cmd.custom_fields)
        if cmd.intent and "intent" not in values:
            values["intent"] = cmd.intent
        return [
            {"id": ids[name], "value": value}
            for name, value in values.items()
            if name in ids and name != "bot_conversation_id"
        ]

    def ticket_url(self, ticket_id: str) -> str:
        return f"{self.config.base_url.rstrip('/')}/agent/tickets/{ticket_id}"

    def _result(
        self,
        cmd: TicketCommand,
        status: Any,
        ticket_id: str | None,
        attempts: int,
        *,
        error: str | None = None,
    ) -> ConnectorResult:
        return ConnectorResult(
            conversation_id=cmd.conversation_id,
            command_id=cmd.command_id,
            kind="ticket",
            status=status,
            external_id=ticket_id,
            url=self.ticket_url(ticket_id) if ticket_id else None,
            attempts=attempts,
            error=error,
            idempotency_key=cmd.idempotency_key,
        )


def _requester(cmd: TicketCommand) -> dict[str, str]:
    email = normalize_email(cmd.requester.email)
    out = {"name": cmd.requester.name or email or cmd.conversation_id}
    if email:
        out["email"] = email
    return out


def _oldest(tickets: Sequence[dict[str, Any]]) -> str | None:
    """Several tickets can share an external id; the oldest (lowest id) is the canonical one."""
    ids = []
    for t in tickets:
        try:
            ids.append(int(t["id"]))
        except (KeyError, TypeError, ValueError):
            continue
    return str(min(ids)) if ids else None
