"""The sandbox application: vendor routes behind auth and fault injection, and runners.

Three ways to run it:
- ``await start_sandbox(...)`` on the caller's loop, returning a ``RunningSandbox``;
- ``with SandboxThread(...) as sb:`` for sync code (own loop in a thread);
- ``run_sandbox_forever(args)`` for the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from handoff.connectors.sandbox import admin, hubspot, intercom, zendesk
from handoff.connectors.sandbox.faults import FaultConfig, FaultInjector, FaultKind, parse_latency
from handoff.connectors.sandbox.intercom_spec import default_spec_path, load_validator
from handoff.connectors.sandbox.state import (
    DEFAULT_CONTACTS,
    STATE_KEY,
    SandboxSettings,
    SandboxState,
    json_response,
)
from handoff.connectors.sandbox.store import Store

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
VENDORS = ("zendesk", "hubspot", "intercom")


def _vendor(path: str) -> str | None:
    first = path.split("/", 2)[1] if path.startswith("/") and len(path) > 1 else ""
    return first if first in VENDORS else None


def _fault_response(vendor: str, kind: FaultKind, retry_after: int) -> web.Response:
    if kind is FaultKind.RATE_LIMIT:
        headers = {"Retry-After": str(retry_after)}
        if vendor == "zendesk":
            body: Any = {"error": "TooManyRequests", "description": "Rate limit exceeded"}
            resp = json_response(body, status=429, headers=headers)
        elif vendor == "hubspot":
            resp = hubspot.error(
                429, "RATE_LIMITS", "You have reached your ten_secondly_rolling limit."
            )
        else:
            resp = intercom.error(429, "rate_limit_exceeded", "Exceeded rate limit")
        resp.headers.update(headers)
        return resp
    if vendor == "zendesk":
        body = {"error": "ServiceUnavailable", "description": "Sandbox-injected server error"}
        return json_response(body, status=503)
    if vendor == "hubspot":
        return hubspot.error(503, "INTERNAL_ERROR", "Sandbox-injected server error")
    return intercom.error(503, "service_unavailable", "Sandbox-injected server error")


def _is_write(request: web.Request) -> bool:
    """Only writes lose responses: a lost read commits nothing, so it is just an error."""
    return request.method in ("POST", "PUT", "PATCH", "DELETE") and not request.path.endswith(
        "/search"
    )


async def _check_auth(vendor: str, request: web.Request) -> web.Response | None:
    if vendor == "zendesk":
        return zendesk.check_auth(request)
    if vendor == "hubspot":
        return hubspot.check_auth(request)
    return await intercom.check_request(request)


@web.middleware
async def vendor_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Faults, then auth and validation, then the handler; counts every vendor request."""
    vendor = _vendor(request.path)
    if vendor is None:
        return await handler(request)
    state = request.app[STATE_KEY]
    resource = request.match_info.route.resource
    route = f"{request.method} {resource.canonical if resource else request.path}"
    decision = state.injector.decide()
    if decision.delay_s:
        state.stats.faults[FaultKind.LATENCY.value] += 1
        await asyncio.sleep(decision.delay_s)
    if decision.before is not None:
        state.stats.faults[decision.before.value] += 1
        response: web.StreamResponse = _fault_response(
            vendor, decision.before, state.injector.config.retry_after
        )
    else:
        response = await _check_auth(vendor, request) or await handler(request)
    if vendor == "zendesk":
        response.headers.update(zendesk.rate_limit_headers(state))
    if (
        decision.before is None
        and decision.lose_response
        and _is_write(request)
        and response.status < 400
    ):
        # The write has committed; the client never learns it. Abort the connection so
        # the client sees a transport error instead of a response.
        state.stats.faults[FaultKind.LOST_RESPONSE.value] += 1
        state.stats.requests[f"{route} lost"] += 1
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError
    state.stats.requests[f"{route} {response.status}"] += 1
    return response


def build_app(
    settings: SandboxSettings, *, clock: Callable[[], float] = time.time
) -> web.Application:
    """The aiohttp app with all vendor and admin routes; opens the SQLite store."""
    store = Store(settings.db_path)
    state = SandboxState(
        settings=settings, store=store, injector=FaultInjector(settings.faults), clock=clock
    )
    if settings.intercom_spec is not None:
        state.intercom_validator = load_validator(settings.intercom_spec)
    if store.count("hs_contacts") == 0:
        for contact in settings.contacts:
            hubspot.add_contact(state, contact)
    app = web.Application(middlewares=[vendor_middleware])
    app[STATE_KEY] = state
    zendesk.add_routes(app)
    hubspot.add_routes(app)
    intercom.add_routes(app)
    admin.add_routes(app)

    async def close_store(_: web.Application) -> None:
        store.close()

    app.on_cleanup.append(close_store)
    return app


@dataclass
class RunningSandbox:
    """A started sandbox; ``base_url`` has no trailing slash."""

    runner: web.AppRunner
    app: web.Application
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def zendesk_url(self) -> str:
        return f"{self.base_url}/zendesk"

    @property
    def hubspot_url(self) -> str:
        return f"{self.base_url}/hubspot"

    @property
    def intercom_url(self) -> str:
        return f"{self.base_url}/intercom"

    @property
    def state(self) -> SandboxState:
        return self.app[STATE_KEY]

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    db_path: str = ":memory:",
    faults: FaultConfig | None = None,
    token: str | None = None,
    intercom_spec: Path | str | None = None,
    validate_intercom: bool = True,
    intercom_autocreate: bool = False,
    contacts: Sequence[dict[str, str]] = DEFAULT_CONTACTS,
    clock: Callable[[], float] = time.time,
    access_log: bool = False,
) -> RunningSandbox:
    """Start the sandbox on the running loop; ``port=0`` picks a free port.

    ``intercom_spec`` defaults to ``../shared/vendor-apis/intercom-2.16.yaml`` next to
    the repository; ``validate_intercom=False`` turns validation off.
    """
    spec = Path(intercom_spec) if intercom_spec else default_spec_path()
    settings = SandboxSettings(
        db_path=db_path,
        faults=faults or FaultConfig(),
        token=token,
        intercom_spec=spec if validate_intercom else None,
        intercom_autocreate=intercom_autocreate,
        contacts=tuple(contacts),
    )
    app = build_app(settings, clock=clock)
    runner = web.AppRunner(app, access_log=log if access_log else None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return RunningSandbox(runner=runner, app=app, host=host, port=int(bound))


class SandboxThread:
    """Run the sandbox on its own event loop in a daemon thread, for sync code and tests.

    Takes the same keyword arguments as ``start_sandbox``. Use as a context manager
    or call ``start()`` / ``stop()``.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="handoff-sandbox", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.sandbox: RunningSandbox | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self.sandbox = self._loop.run_until_complete(start_sandbox(**self._kwargs))
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.sandbox.stop())
        self._loop.close()

    def start(self, timeout: float = 30.0) -> SandboxThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the sandbox did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    def __enter__(self) -> SandboxThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> RunningSandbox:
        if self.sandbox is None:
            raise RuntimeError("the sandbox is not running")
        return self.sandbox

    @property
    def base_url(self) -> str:
        return self.running.base_url

    @property
    def port(self) -> int:
        return self.running.port


async def _serve_forever(args: argparse.Namespace) -> None:
    contacts: Sequence[dict[str, str]] = DEFAULT_CONTACTS
    if args.contacts:
        contacts = json.loads(Path(args.contacts).read_text(encoding="utf-8"))
    elif args.no_seed_contacts:
        contacts = ()
    faults = FaultConfig(
        error_rate=args.error_rate,
        rate_limit_rate=args.rate_limit_rate,
        retry_after=args.retry_after,
        latency_ms=parse_latency(args.latency_ms),
        search_lag_s=args.search_lag_s,
        lost_response_rate=args.lost_response_rate,
        seed=args.seed,
    )
    spec = args.intercom_spec or os.environ.get("HANDOFF_INTERCOM_SPEC")
    token = args.token or os.environ.get("HANDOFF_SANDBOX_TOKEN") or None
    sandbox = await start_sandbox(
        args.host,
        args.port,
        db_path=args.db,
        faults=faults,
        token=token,
        intercom_spec=spec,
        validate_intercom=not args.no_intercom_validation,
        intercom_autocreate=args.intercom_autocreate,
        contacts=contacts,
        access_log=True,
    )
    print(f"handoff sandbox on {sandbox.base_url}", flush=True)
    for vendor in VENDORS:
        print(f"  {vendor:<9} {sandbox.base_url}/{vendor}", flush=True)
    print(f"  listing   {sandbox.base_url}/_sandbox", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sandbox.stop()


def run_sandbox_forever(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; ``args`` comes from ``__main__.add_arguments``."""
    try:
        asyncio.run(_serve_forever(args))
    except (ValueError, OSError) as exc:
        print(f"handoff sandbox: {exc}", file=sys.stderr)
        return 2
    return 0
