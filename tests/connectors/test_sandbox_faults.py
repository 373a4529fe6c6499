"""Fault injection, stats and the runners of the sandbox."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest

from handoff.connectors.sandbox import FaultConfig, SandboxThread
from handoff.connectors.sandbox.faults import FaultInjector, FaultKind
from tests.connectors.sandbox_support import BEARER, INTERCOM, ZD_AUTH, running, ticket_body

TICKETS = "/zendesk/api/v2/tickets"
NOTES = "/hubspot/crm/v3/objects/notes"


async def test_lost_response_commits_but_the_client_sees_a_transport_error() -> None:
    async with (
        running(faults=FaultConfig(lost_response_rate=1.0)) as sb,
        httpx.AsyncClient(base_url=sb.base_url, auth=ZD_AUTH) as c,
    ):
        with pytest.raises(httpx.TransportError):
            await c.post(TICKETS, json=ticket_body("conv-lost"))
        listed = (await c.get("/_sandbox/tickets")).json()["tickets"]
        assert [t["bot_conversation_id"] for t in listed] == ["conv-lost"]
        stats = (await c.get("/_sandbox/stats")).json()
        assert stats["faults"] == {"lost_response": 1}


async def test_rate_limit_answers_429_with_retry_after() -> None:
    faults = FaultConfig(rate_limit_rate=1.0, retry_after=7)
    async with running(faults=faults) as sb, httpx.AsyncClient(base_url=sb.base_url) as c:
        zd = await c.get(TICKETS, auth=ZD_AUTH)
        hs = await c.post(NOTES + "/search", json={}, headers=BEARER)
        ic = await c.get("/intercom/ticket_types", headers=INTERCOM)
        for r in (zd, hs, ic):
            assert r.status_code == 429
            assert r.headers["Retry-After"] == "7"
        assert ic.json()["errors"][0]["code"] == "rate_limit_exceeded"
        assert hs.json()["category"] == "RATE_LIMITS"
        # Admin routes are never faulted.
        assert (await c.get("/_sandbox/stats")).json()["faults"] == {"rate_limit": 3}
        assert (await c.get("/_sandbox/tickets")).json()["tickets"] == []


async def test_error_rate_gives_5xx_and_writes_nothing() -> None:
    async with (
        running(faults=FaultConfig(error_rate=1.0)) as sb,
        httpx.AsyncClient(base_url=sb.base_url, auth=ZD_AUTH) as c,
    ):
        r = await c.post(TICKETS, json=ticket_body())
        assert r.status_code == 503
        await c.post("/_sandbox/faults", json={"error_rate": 0})
        assert (await c.post(TICKETS, json=ticket_body())).status_code == 201
        assert (await c.get("/_sandbox/stats")).json()["tickets"] == 1


def test_same_seed_same_faults() -> None:
    config = FaultConfig(error_rate=0.3, rate_limit_rate=0.2, lost_response_rate=0.1, seed=42)
    injectors = [FaultInjector(config), FaultInjector(config)]
    runs = [[inj.decide() for _ in range(50)] for inj in injectors]
    assert runs[0] == runs[1]
    kinds = {d.before for d in runs[0]}
    assert {FaultKind.ERROR, FaultKind.RATE_LIMIT, None} <= kinds
    injected = FaultInjector(FaultConfig(latency_ms=(5, 10)), rng=random.Random(3))
    assert all(0.005 <= injected.decide().delay_s <= 0.010 for _ in range(20))


async def test_fault_endpoint_rejects_bad_settings() -> None:
    async with running() as sb, httpx.AsyncClient(base_url=sb.base_url) as c:
        assert (await c.post("/_sandbox/faults", json={"error_rate": 2})).status_code == 400
        assert (await c.post("/_sandbox/faults", json={"nope": 1})).status_code == 400
        ok = await c.post("/_sandbox/faults", json={"latency_ms": "1-2", "seed": 5})
        assert ok.json()["latency_ms"] == [1.0, 2.0]


async def test_stats_count_duplicates_and_reset_clears() -> None:
    async with running() as sb, httpx.AsyncClient(base_url=sb.base_url) as c:
        for _ in range(3):
            await c.post(TICKETS, json=ticket_body("conv-d"), auth=ZD_AUTH)
        await c.post(TICKETS, json=ticket_body("conv-e"), auth=ZD_AUTH)
        props = {"hs_timestamp": "1767225600000", "handoff_conversation_id": "conv-d"}
        for _ in range(2):
            await c.post(NOTES, json={"properties": props}, headers=BEARER)
        stats = (await c.get("/_sandbox/stats")).json()
        assert stats["tickets"] == 4 and stats["duplicate_tickets"] == 2
        assert stats["notes"] == 2 and stats["duplicate_notes"] == 1
        assert stats["requests"]["POST /zendesk/api/v2/tickets 201"] == 4
        notes = (await c.get("/_sandbox/notes")).json()["notes"]
        assert {n["handoff_conversation_id"] for n in notes} == {"conv-d"}
        page = await c.get("/_sandbox")
        assert "conv-d" in page.text and page.headers["Content-Type"].startswith("text/html")
        await c.post("/_sandbox/reset")
        stats = (await c.get("/_sandbox/stats")).json()
        assert (stats["tickets"], stats["notes"], stats["requests"]) == (0, 0, {})


async def test_fixed_token_is_enforced() -> None:
    async with running(token="s3cret") as sb, httpx.AsyncClient(base_url=sb.base_url) as c:
        assert (await c.get(TICKETS, auth=ZD_AUTH)).status_code == 401
        good = httpx.BasicAuth("agent@example.com/token", "s3cret")
        assert (await c.get(TICKETS, auth=good)).status_code == 200


async def test_missing_spec_disables_validation(tmp_path: Path) -> None:
    async with (
        running(intercom_spec=tmp_path / "absent.yaml") as sb,
        httpx.AsyncClient(base_url=sb.base_url, headers=INTERCOM) as c,
    ):
        r = await c.post("/intercom/tickets", json={"ticket_type_id": "1", "contacts": [{}]})
        assert r.status_code == 200
        assert (await c.get("/_sandbox/stats")).json()["intercom_validated"] == 0


def test_thread_runner_with_file_db(tmp_path: Path) -> None:
    db = str(tmp_path / "sandbox.db")
    with SandboxThread(db_path=db, validate_intercom=False) as sb:
        r = httpx.post(sb.base_url + TICKETS, json=ticket_body(), auth=ZD_AUTH)
        assert r.status_code == 201
    with SandboxThread(db_path=db, validate_intercom=False) as sb:
        listed = httpx.get(sb.base_url + "/_sandbox/tickets").json()["tickets"]
        assert len(listed) == 1
