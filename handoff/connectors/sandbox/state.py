"""What every sandbox handler shares: settings, the store, faults, counters, helpers."""

from __future__ import annotations

import hmac
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from handoff.connectors.sandbox.faults import FaultConfig, FaultInjector
from handoff.connectors.sandbox.store import Store

DEFAULT_CONTACTS: tuple[dict[str, str], ...] = (
    {"email": "ana.silva@example.com", "firstname": "Ana", "lastname": "Silva"},
    {"email": "bob.jones@example.com", "firstname": "Bob", "lastname": "Jones"},
    {"email": "carla.diaz@example.com", "firstname": "Carla", "lastname": "Diaz"},
    # Two contacts with one email: a lookup by email must report "ambiguous", not guess.
    {"email": "shared@example.com", "firstname": "Sam", "lastname": "Shared"},
    {"email": "shared@example.com", "firstname": "Sue", "lastname": "Shared"},
)


@dataclass(frozen=True)
class SandboxSettings:
    """Everything the sandbox app is built from; no environment is read here.

    ``token``: the only accepted credential (Zendesk API token, HubSpot and Intercom
    bearer token); None accepts any non-empty one.
    ``intercom_spec``: the OpenAPI file every Intercom request is validated against;
    None disables validation.
    ``intercom_autocreate``: an unknown Intercom conversation id is created on first use
    instead of answering 404.
    ``contacts``: the HubSpot contacts seeded at start and after a reset.
    ``zendesk_custom_fields``: ticket field titles -> ids, listed at
    ``/zendesk/api/v2/ticket_fields``; ``bot_conversation_id`` is the one duplicate
    counting reads.
    """

    db_path: str = ":memory:"
    faults: FaultConfig = field(default_factory=FaultConfig)
    token: str | None = None
    intercom_spec: Path | None = None
    intercom_autocreate: bool = False
    contacts: Sequence[dict[str, str]] = DEFAULT_CONTACTS
    note_contact_type_id: int = 202
    zendesk_rate_limit: int = 700
    zendesk_custom_fields: dict[str, int] = field(
        default_factory=lambda: {
            "bot_conversation_id": 9001,
            "intent": 9002,
            "order_id": 9003,
            "invoice_id": 9004,
            "product_area": 9005,
            "plan_tier": 9006,
            "customer_tier": 9007,
            "app_version": 9008,
        }
    )


@dataclass
class Stats:
    """In-memory counters; reset with the data."""

    requests: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    intercom_validated: int = 0
    intercom_rejected: int = 0

    def clear(self) -> None:
        self.requests.clear()
        self.faults.clear()
        self.intercom_validated = 0
        self.intercom_rejected = 0


@dataclass
class SandboxState:
    settings: SandboxSettings
    store: Store
    injector: FaultInjector
    clock: Callable[[], float] = time.time
    stats: Stats = field(default_factory=Stats)
    intercom_validator: Any = None  # IntercomValidator | None; Any avoids an import cycle
    zendesk_window: list[float] = field(default_factory=lambda: [0.0, 0.0])

    def search_cutoff(self) -> float:
        """Objects created after this time are not in the search index yet."""
        return self.clock() - self.injector.config.search_lag_s


STATE_KEY = web.AppKey("sandbox_state", SandboxState)


def state_of(request: web.Request) -> SandboxState:
    return request.app[STATE_KEY]


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(data, status=status, headers=headers)


async def read_json(request: web.Request) -> tuple[Any, str | None]:
    """The parsed body, or (None, reason) when it is absent or not JSON.

    A client that went away mid-body (a worker killed in a chaos run) gets a 400 that
    nobody reads, instead of a logged traceback per request: nothing was committed.
    """
    try:
        raw = await request.read()
    except ConnectionResetError:
        raise web.HTTPBadRequest(text="the client closed the connection mid-body") from None
    if not raw:
        return None, "the request body is empty"
    try:
        return json.loads(raw), None
    except ValueError as exc:
        return None, f"the request body is not valid JSON: {exc}"


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def iso_ms(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def new_request_id() -> str:
    return str(uuid.uuid4())


def token_ok(settings: SandboxSettings, token: str) -> bool:
    if not token:
        return False
    if settings.token is None:
        return True
    return hmac.compare_digest(token.encode(), settings.token.encode())


def bearer_token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
