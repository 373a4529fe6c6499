"""Web view access: a bearer token for all but /health, or loopback only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import faust
import pytest
from aiohttp.test_utils import TestClient, TestServer

from handoff.exceptions import ConfigError
from handoff.settings import Settings
from handoff.web_auth import install_web_auth, is_loopback

TOKEN = "tok-" + "9" * 32


def settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(data_dir=tmp_path, store="memory://", **kw)


def faust_app(s: Settings) -> faust.App:
    app = faust.App(f"auth-{id(s)}", store="memory://", web_enabled=True)

    @app.page("/health")
    async def health(self: Any, request: Any) -> Any:
        return self.json({"ok": True})

    @app.page("/dashboard")
    async def dashboard(self: Any, request: Any) -> Any:
        return self.html("<html>no data here</html>")

    @app.page("/metrics/summary")
    async def summary(self: Any, request: Any) -> Any:
        return self.json({"escalations": 1})

    @app.page("/conversations/{conversation_id}")
    async def conversation(self: Any, request: Any, conversation_id: str) -> Any:
        return self.json({"conversation_id": conversation_id})

    install_web_auth(app, s)
    return app


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    app = faust_app(settings(tmp_path, web_token=TOKEN, web_host="0.0.0.0"))
    app.web.init_server()
    async with TestClient(TestServer(app.web.web_app)) as c:
        yield c
    if app._http_client is not None:
        await app._http_client.close()


async def test_health_is_open(client: TestClient[Any, Any]) -> None:
    r = await client.get("/health")
    assert r.status == 200 and await r.json() == {"ok": True}


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer wrong",
        f"Basic {TOKEN}",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
    ],
)
async def test_views_need_the_token(client: TestClient[Any, Any], header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    r = await client.get("/conversations/c1", headers=headers)
    assert r.status == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    body = await r.text()
    assert TOKEN not in body


async def test_dashboard_page_is_open_but_its_data_is_not(client: TestClient[Any, Any]) -> None:
    page = await client.get("/dashboard")
    assert page.status == 200
    assert (await client.get("/metrics/summary")).status == 401
    ok = await client.get("/metrics/summary", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status == 200


async def test_views_with_the_token(client: TestClient[Any, Any]) -> None:
    r = await client.get("/conversations/c1", headers={"Authorization": f"bearer {TOKEN}"})
    assert r.status == 200 and await r.json() == {"conversation_id": "c1"}


async def test_unknown_paths_are_not_revealed_without_token(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/router/")).status == 401
    assert (await client.get("/nope")).status == 401


async def test_peer_requests_carry_the_token(tmp_path: Path) -> None:
    app = faust_app(settings(tmp_path, web_token=TOKEN, web_host="10.0.0.5"))
    session = app.http_client
    try:
        assert session.headers["Authorization"] == f"Bearer {TOKEN}"
    finally:
        await session.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "handoff-worker", "example.com"])
def test_non_loopback_without_token_is_refused(tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError, match="HANDOFF_WEB_TOKEN is not set"):
        faust_app(settings(tmp_path, web_host=host))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
async def test_loopback_without_token_serves_openly(tmp_path: Path, host: str) -> None:
    assert is_loopback(host)
    app = faust_app(settings(tmp_path, web_host=host))
    app.web.init_server()
    async with TestClient(TestServer(app.web.web_app)) as c:
        assert (await c.get("/conversations/c9")).status == 200


def test_web_disabled_needs_nothing(tmp_path: Path) -> None:
    s = settings(tmp_path, web_host="0.0.0.0", web_enabled=False)
    install_web_auth(faust.App("auth-off", store="memory://"), s)


def test_token_never_in_settings_repr(tmp_path: Path) -> None:
    s = settings(tmp_path, web_token=TOKEN)
    assert TOKEN not in repr(s) and TOKEN not in str(s)


def test_app_factory_refuses_an_open_bind(tmp_path: Path) -> None:
    from handoff.app import create_connector_app

    with pytest.raises(ConfigError, match="not a loopback address"):
        create_connector_app(settings(tmp_path, web_host="0.0.0.0"))
