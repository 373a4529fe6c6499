"""The Intercom part of the sandbox, validated against the 2.16 OpenAPI description."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from handoff.connectors.sandbox import RunningSandbox
from handoff.connectors.sandbox.intercom_spec import default_spec_path
from tests.connectors.sandbox_support import INTERCOM, running

pytestmark = pytest.mark.skipif(
    not default_spec_path().is_file(), reason="the Intercom spec is not next to the repository"
)


@pytest.fixture
async def ic() -> AsyncIterator[tuple[RunningSandbox, httpx.AsyncClient]]:
    async with running() as sb, httpx.AsyncClient(base_url=sb.base_url, headers=INTERCOM) as c:
        yield sb, c


async def new_conversation(c: httpx.AsyncClient) -> str:
    r = await c.post("/_sandbox/intercom/conversations", json={"email": "ana@example.com"})
    assert r.status_code == 201
    return str(r.json()["id"])


async def test_unknown_conversation_is_404(ic) -> None:
    _, c = ic
    r = await c.get("/intercom/conversations/424242")
    assert r.status_code == 404
    assert r.json()["type"] == "error.list"


async def test_convert_twice_is_an_error_and_search_finds_the_link(ic) -> None:
    _, c = ic
    conv = await new_conversation(c)
    types = (await c.get("/intercom/ticket_types")).json()["data"]
    customer = next(t["id"] for t in types if t["category"] == "Customer")
    body = {"ticket_type_id": customer, "attributes": {"_default_title_": "Refund"}}
    first = await c.post(f"/intercom/conversations/{conv}/convert", json=body)
    assert first.status_code == 200 and first.json()["type"] == "ticket"
    second = await c.post(f"/intercom/conversations/{conv}/convert", json=body)
    assert second.status_code == 400
    assert second.json()["errors"][0]["code"] == "parameter_invalid"
    linked = (await c.get(f"/intercom/conversations/{conv}")).json()["linked_objects"]["data"]
    assert linked == [{"type": "ticket", "id": first.json()["id"], "category": "Customer"}]
    query = {"query": {"field": "title", "operator": "=", "value": "Refund"}}
    found = await c.post("/intercom/tickets/search", json=query)
    assert found.json()["total_count"] == 1


async def test_spec_validation_rejects_bad_and_accepts_good(ic) -> None:
    _, c = ic
    bad = await c.post("/intercom/tickets", json={"contacts": [{"email": "a@example.com"}]})
    assert bad.status_code == 400
    err = bad.json()
    assert err["type"] == "error.list" and "ticket_type_id" in err["errors"][0]["message"]
    good = await c.post(
        "/intercom/tickets",
        json={"ticket_type_id": "1", "contacts": [{"email": "a@example.com"}]},
    )
    assert good.status_code == 200
    stats = (await c.get("/_sandbox/stats")).json()
    assert stats["intercom_validated"] == 2 and stats["intercom_rejected"] == 1


async def test_version_header_and_token_required(ic) -> None:
    sb, _ = ic
    async with httpx.AsyncClient(base_url=sb.base_url) as anon:
        assert (await anon.get("/intercom/ticket_types")).status_code == 401
        r = await anon.get("/intercom/ticket_types", headers={"Authorization": "Bearer t"})
        assert r.status_code == 400


async def test_ticket_update_reply_tag(ic) -> None:
    _, c = ic
    conv = await new_conversation(c)
    note = {"message_type": "note", "type": "admin", "admin_id": "1", "body": "<p>summary</p>"}
    replied = await c.post(f"/intercom/conversations/{conv}/reply", json=note)
    assert replied.json()["conversation_parts"]["total_count"] == 1
    tid = (
        await c.post(
            "/intercom/tickets",
            json={"ticket_type_id": "1", "contacts": [{"email": "a@example.com"}]},
        )
    ).json()["id"]
    put = await c.put(f"/intercom/tickets/{tid}", json={"ticket_state_id": "2", "open": True})
    assert put.json()["ticket_state"]["category"] == "in_progress"
    part = await c.post(f"/intercom/tickets/{tid}/reply", json=note)
    assert part.json()["part_type"] == "note"
    tag = await c.post(f"/intercom/tickets/{tid}/tags", json={"id": "7", "admin_id": "1"})
    assert tag.json()["type"] == "tag"


async def test_autocreate_makes_unknown_numeric_conversations() -> None:
    async with (
        running(intercom_autocreate=True) as sb,
        httpx.AsyncClient(base_url=sb.base_url, headers=INTERCOM) as c,
    ):
        assert (await c.get("/intercom/conversations/5150")).status_code == 200
