"""Pick the ticket and note connectors named in the settings.

``kind="sandbox"`` is not a fake: it is the real Zendesk (tickets) or HubSpot (notes)
client, pointed at the local sandbox (``{sandbox_url}/zendesk``, ``{sandbox_url}/hubspot``)
with throwaway credentials unless configs are given. ``kind="none"`` returns ``None`` and
the caller skips the write.

Every connector has ``async apply(cmd) -> ConnectorResult`` and ``async aclose()``. After the
last attempt ``apply`` returns ``status="failed"`` with the vendor's error (credentials
scrubbed) instead of raising; the caller also dead-letters the command.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import httpx
from pydantic import SecretStr

from handoff.connectors.config import (
    HubSpotConfig,
    IntercomConfig,
    RateLimit,
    RetryPolicy,
    ZendeskConfig,
)
from handoff.connectors.hubspot import HubSpotConnector
from handoff.connectors.intercom import IntercomConnector
from handoff.connectors.zendesk import ZendeskConnector
from handoff.exceptions import ConfigError
from handoff.streams.commands import ConnectorResult, CrmNoteCommand, TicketCommand

TicketKind = Literal["zendesk", "intercom", "sandbox", "none"]
NoteKind = Literal["hubspot", "sandbox", "none"]

# Zendesk's smallest plan allows 200 requests/minute; HubSpot 100 per 10 seconds.
ZENDESK_RATE = RateLimit(requests=3, per_seconds=1.0)
INTERCOM_RATE = RateLimit(requests=16, per_seconds=1.0)
HUBSPOT_RATE = RateLimit(requests=9, per_seconds=1.0)
# The local sandbox has no vendor plan behind it; the limiter stays on, well above the
# vendors' figures, so the demo runs in seconds and the limiter's code path is exercised.
SANDBOX_RATE = RateLimit(requests=200, per_seconds=1.0)


class TicketConnector(Protocol):
    async def apply(self, cmd: TicketCommand) -> ConnectorResult: ...

    async def aclose(self) -> None: ...


class NoteConnector(Protocol):
    async def apply(self, cmd: CrmNoteCommand) -> ConnectorResult: ...

    async def aclose(self) -> None: ...


def sandbox_zendesk_config(sandbox_url: str) -> ZendeskConfig:
    return ZendeskConfig(
        base_url=f"{sandbox_url.rstrip('/')}/zendesk",
        email="handoff@sandbox.test",
        api_token=SecretStr("sandbox-token"),
        # The sandbox's default ticket fields (GET /zendesk/api/v2/ticket_fields).
        bot_conversation_id_field_id=9_000_001,
        custom_field_ids={
            "intent": 9_000_002,
            "product_area": 9_000_003,
            "plan_tier": 9_000_004,
            "customer_tier": 9_000_005,
            "order_id": 9_000_006,
            "invoice_id": 9_000_007,
            "app_version": 9_000_008,
        },
    )


def sandbox_intercom_config(sandbox_url: str) -> IntercomConfig:
    return IntercomConfig(
        base_url=f"{sandbox_url.rstrip('/')}/intercom",
        token=SecretStr("sandbox-token"),
        admin_id="1",
        default_ticket_type_id="1",
    )


def sandbox_hubspot_config(sandbox_url: str) -> HubSpotConfig:
    return HubSpotConfig(
        base_url=f"{sandbox_url.rstrip('/')}/hubspot", token=SecretStr("sandbox-token")
    )


def _client(client: httpx.AsyncClient | None) -> tuple[httpx.AsyncClient, bool]:
    return (client, False) if client is not None else (httpx.AsyncClient(), True)


def build_ticket_connector(
    kind: TicketKind,
    *,
    zendesk: ZendeskConfig | None = None,
    intercom: IntercomConfig | None = None,
    sandbox_url: str | None = None,
    client: httpx.AsyncClient | None = None,
    retry: RetryPolicy | None = None,
    rate_limit: RateLimit | None = None,
    **hooks: Any,
) -> TicketConnector | None:
    """The ticket connector for ``kind``; ``hooks`` (sleep, clock, random, now) are for tests.

    A client passed in stays the caller's to close; one made here is closed by ``aclose``.
    """
    if kind == "none":
        return None
    if kind == "intercom":
        if intercom is None:
            raise ConfigError("ticket connector 'intercom' needs an IntercomConfig")
        http, owns = _client(client)
        hooks.pop("now", None)
        return IntercomConnector(
            intercom,
            http,
            retry=retry,
            rate_limit=rate_limit or INTERCOM_RATE,
            owns_client=owns,
            **hooks,
        )
    if kind == "sandbox":
        if sandbox_url is None:
            raise ConfigError("ticket connector 'sandbox' needs the sandbox URL")
        rate_limit = rate_limit or SANDBOX_RATE
        base = f"{sandbox_url.rstrip('/')}/zendesk"
        zendesk = (
            zendesk.model_copy(update={"base_url": base})
            if zendesk
            else sandbox_zendesk_config(sandbox_url)
        )
    elif kind != "zendesk":
        raise ConfigError(f"unknown ticket connector {kind!r}")
    if zendesk is None:
        raise ConfigError("ticket connector 'zendesk' needs a ZendeskConfig")
    http, owns = _client(client)
    return ZendeskConnector(
        zendesk, http, retry=retry, rate_limit=rate_limit or ZENDESK_RATE, owns_client=owns, **hooks
    )


def build_note_connector(
    kind: NoteKind,
    *,
    hubspot: HubSpotConfig | None = None,
    sandbox_url: str | None = None,
    client: httpx.AsyncClient | None = None,
    retry: RetryPolicy | None = None,
    rate_limit: RateLimit | None = None,
    **hooks: Any,
) -> NoteConnector | None:
    """The CRM note connector for ``kind``; see :func:`build_ticket_connector`."""
    if kind == "none":
        return None
    if kind == "sandbox":
        if sandbox_url is None:
            raise ConfigError("note connector 'sandbox' needs the sandbox URL")
        rate_limit = rate_limit or SANDBOX_RATE
        base = f"{sandbox_url.rstrip('/')}/hubspot"
        hubspot = (
            hubspot.model_copy(update={"base_url": base})
            if hubspot
            else sandbox_hubspot_config(sandbox_url)
        )
    elif kind != "hubspot":
        raise ConfigError(f"unknown note connector {kind!r}")
    if hubspot is None:
        raise ConfigError("note connector 'hubspot' needs a HubSpotConfig")
    http, owns = _client(client)
    return HubSpotConnector(
        hubspot, http, retry=retry, rate_limit=rate_limit or HUBSPOT_RATE, owns_client=owns, **hooks
    )
