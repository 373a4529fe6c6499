"""Access to a worker's web views: a bearer token, or loopback only.

With ``HANDOFF_WEB_TOKEN`` set, every path but ``/health`` and the dashboard's page and
static assets (no data in them) needs
``Authorization: Bearer <token>`` (compared in constant time); ``/health`` stays open for
orchestrators' probes. Without a token the views are served only on a loopback address:
``install_web_auth`` refuses a non-loopback ``HANDOFF_WEB_HOST`` with a ConfigError, so a
worker never exposes conversation state to a network by accident.

The check is an aiohttp middleware on Faust's web application, so it covers every view,
including ones registered later and Faust's own (``/router/``, ``/table/``...). The app's
HTTP client carries the same token, so requests one worker forwards to another (the owner
of a conversation, peers' metric rows) pass.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from handoff.exceptions import ConfigError
from handoff.settings import Settings

# Open without a token: the probe, and the dashboard's page and assets, which hold no data
# (the page's script asks for the token and sends it as a bearer header to the data views).
OPEN_PATHS = frozenset({"/health", "/health/", "/dashboard", "/dashboard/"})
OPEN_PREFIXES = ("/dashboard/static/",)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IPs (127.0.0.0/8, ::1); names are not resolved."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings) -> None:
    """Raise ConfigError when the views would be reachable off this host without a token."""
    if not settings.web_enabled or settings.web_token.get_secret_value():
        return
    if not is_loopback(settings.web_host):
        raise ConfigError(
            f"HANDOFF_WEB_HOST={settings.web_host!r} is not a loopback address and "
            "HANDOFF_WEB_TOKEN is not set: set a token, or bind to 127.0.0.1"
        )


def bearer_middleware(token: str) -> Any:
    """An aiohttp middleware that lets a request through only with ``Bearer <token>``."""
    expected = token.encode("utf-8")

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or request.path.startswith(OPEN_PREFIXES):
            return await handler(request)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8"), expected
        )
        if not ok:
            return web.json_response(
                {"error": "unauthorized", "detail": "send Authorization: Bearer <token>"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="handoff"'},
            )
        return await handler(request)

    return require_token


def install_web_auth(app: Any, settings: Settings) -> None:
    """Protect a Faust app's web views per the settings; raise ConfigError on an unsafe bind.

    Call once, when the app is built (before the web server starts: aiohttp freezes its
    middleware list at startup).
    """
    if not settings.web_enabled:
        return
    check_bind(settings)
    token = settings.web_token.get_secret_value()
    if token:
        app.web.web_app.middlewares.append(bearer_middleware(token))
        # Views ask peer workers for their rows (``/metrics/local``) through the app's
        # HTTP client; give it the token so a protected cluster still answers itself.
        app.conf.HttpClient = _session_factory(token)


def _session_factory(token: str) -> Callable[[], aiohttp.ClientSession]:
    def session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})

    return session
