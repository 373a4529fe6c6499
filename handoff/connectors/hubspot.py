"""HubSpot connector: one CRM note per conversation, on the one contact it surely belongs to.

Contact: ``cmd.contact.crm_contact_id`` when a previous result supplied it, else a search
by normalized e-mail (``EQ``); exactly one hit (``total == 1``) is associated, zero or
several give status ``unmatched_contact`` and an unassociated note, never a guess. The
note->contact association type id is read once from the v4 labels endpoint and cached.

Finding the note: ``cmd.note_id`` when known (consistent), else the note this process
last wrote for the conversation (a bounded in-memory map: covers a redelivery to the same
worker before the result made it back into the conversation's state), else
``POST /crm/v3/objects/notes/search`` with two OR-ed filter groups: the property
``handoff_conversation_id`` EQ the conversation id, or the body token ``hoconv<hash>``
(``CONTAINS_TOKEN``), a fallback for notes whose property was cleared. Found -> PATCH.

HubSpot has no idempotency key, so a create whose answer was lost would be retried into
a duplicate. Before every retry of a create the note search is polled
(``search_polls`` x ``search_poll_delay``) and a hit ends the retries. Search lags behind
writes, so a window remains in which a committed-but-unanswered create is still invisible
and the retry creates a second note; the polls narrow it (the backoff runs first, then
the polls), results report ``attempts`` so a retried create is visible, and every later
command for the conversation carries the note id from our result and PATCHes that one.

The same lag leaves one more window: a worker that crashes after a create but before its
result is committed, whose command is redelivered to a *new* process sooner than search
catches up (HubSpot: seconds; a rebalance after a crash usually takes longer). No
HubSpot API closes it without an idempotency key; ``duplicate_notes`` in the sandbox
stats and the oldest-first choice in ``_find_note`` keep it visible and convergent.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from handoff.connectors.config import HubSpotConfig, RateLimit, RetryPolicy
from handoff.connectors.http import Reply, Sleep, VendorConnector, attempts_of
from handoff.connectors.zendesk import normalize_email
from handoff.exceptions import ConnectorError, PermanentError
from handoff.streams.commands import ConnectorResult, CrmNoteCommand

ELLIPSIS = "…"
KNOWN_NOTES = 10_000
JOINERS = "\u200d\ufe0e\ufe0f"  # zero-width joiner, variation selectors


def body_token(conversation_id: str) -> str:
    """A single search token (letters and digits only) that names the conversation."""
    return "hoconv" + hashlib.sha256(conversation_id.encode()).hexdigest()[:24]


def build_body(cmd: CrmNoteCommand, limit: int) -> str:
    """The note body, at most ``limit`` characters, always ending with the link and token.

    The summary is cut, never the trailer (ticket link, then the token line). The cut never
    splits a character: Python strings index code points, and trailing combining marks or
    joiners are never separated from the character they modify.
    """
    trailer_lines = []
    if cmd.ticket_url and cmd.ticket_url not in cmd.body:
        trailer_lines.append(f"Ticket: {cmd.ticket_url}")
    trailer_lines.append(f"ref {body_token(cmd.conversation_id)}")
    trailer = "\n".join(trailer_lines)
    full = f"{cmd.body}\n\n{trailer}"
    if len(full) <= limit:
        return full
    head = cmd.body
    link_line = next(
        (ln for ln in cmd.body.splitlines() if cmd.ticket_url and cmd.ticket_url in ln), None
    )
    if link_line is not None:
        # The link lives in the summary: keep it by moving it into the trailer.
        head = head.replace(link_line, "", 1)
        trailer = f"{link_line}\n{trailer}"
    room = limit - len(trailer) - len(ELLIPSIS) - 2
    if room < 0:
        raise PermanentError("hubspot: body_limit too small for the note trailer")
    cut = room
    # Step back while the cut would separate a mark, joiner or selector from its base.
    while 0 < cut < len(head) and (
        unicodedata.combining(head[cut]) or head[cut] in JOINERS or head[cut - 1] == "\u200d"
    ):
        cut -= 1
    return f"{head[:cut].rstrip()}{ELLIPSIS}\n\n{trailer}"


class HubSpotConnector(VendorConnector):
    """Applies CrmNoteCommands to HubSpot notes; ``apply`` never raises for vendor errors."""

    def __init__(
        self,
        config: HubSpotConfig,
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
        token = config.token.get_secret_value()
        super().__init__(
            client,
            vendor="hubspot",
            base_url=config.base_url,
            headers={"Authorization": f"Bearer {token}"},
            secrets=(token,),
            timeout=config.timeout,
            retry=retry,
            rate_limit=rate_limit,
            sleep=sleep,
            clock=clock,
            random=random,
            owns_client=owns_client,
        )
        self._now = now
        self._association: dict[str, Any] | None = None
        # conversation id -> note id for notes this process wrote or found; see module doc.
        self._known: OrderedDict[str, str] = OrderedDict()

    async def apply(self, cmd: CrmNoteCommand) -> ConnectorResult:
        """Create or patch the conversation's note; failures become ``failed`` results."""
        contact_id: str | None = None
        try:
            contact_id = await self._contact(cmd)
            note_id, created, attempts = await self._upsert(cmd, contact_id)
        except ConnectorError as err:
            return self._result(
                cmd, "failed", cmd.note_id, attempts_of(err), contact_id, error=str(err)
            )
        status = "unmatched_contact" if contact_id is None else "created" if created else "updated"
        return self._result(cmd, status, note_id, attempts, contact_id)

    # ---- contact -------------------------------------------------------------------

    async def _contact(self, cmd: CrmNoteCommand) -> str | None:
        if cmd.contact.crm_contact_id:
            return cmd.contact.crm_contact_id
        email = normalize_email(cmd.contact.email)
        if not email:
            return None
        reply = await self.http.request(
            "POST",
            "/crm/v3/objects/contacts/search",
            json={
                "filterGroups": [
                    {"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}
                ],
                "properties": ["email"],
                "limit": 2,
            },
        )
        results = reply.get("results") or []
        if reply.get("total") == 1 and len(results) == 1:
            return str(results[0]["id"])
        return None

    async def _association_type(self) -> dict[str, Any]:
        if self._association is None:
            reply = await self.http.request("GET", "/crm/associations/v4/notes/contacts/labels")
            labels = [r for r in reply.get("results") or () if isinstance(r, dict)]
            defined = [r for r in labels if r.get("category") == "HUBSPOT_DEFINED"]
            pick = next((r for r in defined if not r.get("label")), None) or next(
                iter(defined or labels), None
            )
            if pick is None or "typeId" not in pick:
                raise PermanentError("hubspot: no note->contact association type")
            self._association = {
                "associationCategory": pick.get("category", "HUBSPOT_DEFINED"),
                "associationTypeId": int(pick["typeId"]),
            }
        return self._association

    # ---- note ----------------------------------------------------------------------

    async def _upsert(self, cmd: CrmNoteCommand, contact_id: str | None) -> tuple[str, bool, int]:
        body = build_body(cmd, self.config.body_limit)
        prop = self.config.note_conversation_property
        properties = {"hs_note_body": body, prop: cmd.conversation_id}
        conv = cmd.conversation_id
        known = cmd.note_id or self._known.get(conv)
        if known is not None:
            try:
                return self._remember(conv, await self._patch(known, properties, contact_id))
            except PermanentError as err:
                if err.status != 404:
                    raise
                self._known.pop(conv, None)  # deleted by a user: look again, then create
        found = await self._find_note(cmd)
        if found is not None and found != known:
            return self._remember(conv, await self._patch(found, properties, contact_id))
        return self._remember(conv, await self._create(cmd, properties, contact_id))

    def _remember(self, conv: str, outcome: tuple[str, bool, int]) -> tuple[str, bool, int]:
        self._known[conv] = outcome[0]
        self._known.move_to_end(conv)
        while len(self._known) > KNOWN_NOTES:
            self._known.popitem(last=False)
        return outcome

    async def _patch(
        self, note_id: str, properties: dict[str, str], contact_id: str | None
    ) -> tuple[str, bool, int]:
        reply = await self.http.request(
            "PATCH", f"/crm/v3/objects/notes/{note_id}", json={"properties": properties}
        )
        if contact_id is not None:
            # A note first written unassociated gets its contact once one matches; PUT
            # addressed by both ids, so repeating it changes nothing.
            await self._associate(note_id, contact_id)
        return note_id, False, reply.attempts

    async def _find_note(self, cmd: CrmNoteCommand) -> str | None:
        prop = self.config.note_conversation_property
        reply = await self.http.request(
            "POST",
            "/crm/v3/objects/notes/search",
            json={
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": prop, "operator": "EQ", "value": cmd.conversation_id}
                        ]
                    },
                    {
                        "filters": [
                            {
                                "propertyName": "hs_note_body",
                                "operator": "CONTAINS_TOKEN",
                                "value": body_token(cmd.conversation_id),
                            }
                        ]
                    },
                ],
                "properties": [prop, "hs_note_body"],
                "sorts": [{"propertyName": "hs_createdate", "direction": "ASCENDING"}],
                "limit": 10,
            },
        )
        token = body_token(cmd.conversation_id)
        ids = []
        for note in reply.get("results") or ():
            props = note.get("properties") or {} if isinstance(note, dict) else {}
            if props.get(prop) == cmd.conversation_id or token in (props.get("hs_note_body") or ""):
                ids.append(str(note["id"]))
        # Oldest first; if a duplicate ever slipped through, every command patches the same one.
        return min(ids, key=lambda i: (len(i), i)) if ids else None

    async def _create(
        self, cmd: CrmNoteCommand, properties: dict[str, str], contact_id: str | None
    ) -> tuple[str, bool, int]:
        associations = []
        if contact_id is not None:
            associations.append(
                {"to": {"id": contact_id}, "types": [await self._association_type()]}
            )
        stamp = int(self._now().timestamp() * 1000)
        payload = {
            "properties": {**properties, "hs_timestamp": str(stamp)},
            "associations": associations,
        }

        async def send(attempt: int) -> Reply:
            return await self.http.send_once(
                "POST", "/crm/v3/objects/notes", json=payload, attempt=attempt
            )

        async def recheck() -> Reply | None:
            for poll in range(self.config.search_polls):
                if poll:
                    await self.http.sleep(self.config.search_poll_delay)
                found = await self._find_note(cmd)
                if found is not None:
                    return Reply(200, httpx.Headers(), {"id": found})
            return None

        done = await self.http.with_retries(send, recheck=recheck)
        note_id = done.value.get("id")
        if not note_id:
            raise PermanentError("hubspot POST /crm/v3/objects/notes: no id in the answer")
        if done.rechecked and contact_id is not None:
            await self._associate(str(note_id), contact_id)
        return str(note_id), True, done.attempts

    async def _associate(self, note_id: str, contact_id: str) -> None:
        kind = await self._association_type()
        await self.http.request(
            "PUT",
            f"/crm/v4/objects/notes/{note_id}/associations/contacts/{contact_id}",
            json=[kind],
        )

    def _result(
        self,
        cmd: CrmNoteCommand,
        status: Any,
        note_id: str | None,
        attempts: int,
        contact_id: str | None,
        *,
        error: str | None = None,
    ) -> ConnectorResult:
        return ConnectorResult(
            conversation_id=cmd.conversation_id,
            command_id=cmd.command_id,
            kind="crm_note",
            status=status,
            external_id=note_id,
            url=None,
            attempts=attempts,
            error=error,
            idempotency_key=cmd.idempotency_key,
            crm_contact_id=contact_id,
        )
