"""The Zendesk part of the sandbox, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from handoff.connectors.sandbox import RunningSandbox
from tests.connectors.sandbox_support import ZD_AUTH, running, ticket_body

TICKETS = "/zendesk/api/v2/tickets"


@pytest.fixture
async def zd() -> AsyncIterator[tuple[RunningSandbox, httpx.AsyncClient]]:
    async with running() as sb, httpx.AsyncClient(base_url=sb.base_url, auth=ZD_AUTH) as c:
        yield sb, c


async def test_create_returns_201_location_and_rate_limit_headers(zd) -> None:
    _, c = zd
    r = await c.post(TICKETS + ".json", json=ticket_body())
    assert r.status_code == 201
    ticket = r.json()["ticket"]
    assert r.headers["Location"].endswith(f"/zendesk/api/v2/tickets/{ticket['id']}.json")
    assert ticket["external_id"] == "conv-1"
    assert {"id": 9001, "value": "conv-1"} in ticket["custom_fields"]
    assert ticket["priority"] == "high" and ticket["status"] == "new"
    assert int(r.headers["X-Rate-Limit-Remaining"]) < int(r.headers["X-Rate-Limit"])
    shown = await c.get(f"{TICKETS}/{ticket['id']}")
    assert shown.json()["ticket"]["description"] == "Customer asks for a refund"


async def test_auth_is_required(zd) -> None:
    sb, _ = zd
    async with httpx.AsyncClient(base_url=sb.base_url) as anon:
        assert (await anon.get(TICKETS)).status_code == 401
        bad = httpx.BasicAuth("agent@example.com", "password")
        assert (await anon.get(TICKETS, auth=bad)).status_code == 401


async def test_idempotency_key_miss_hit_and_conflict(zd) -> None:
    _, c = zd
    headers = {"Idempotency-Key": "conv-1:escalation:1"}
    first = await c.post(TICKETS, json=ticket_body(), headers=headers)
    again = await c.post(TICKETS, json=ticket_body(), headers=headers)
    assert first.headers["x-idempotency-lookup"] == "miss"
    assert again.headers["x-idempotency-lookup"] == "hit"
    assert again.json()["ticket"]["id"] == first.json()["ticket"]["id"]
    other = await c.post(TICKETS, json=ticket_body(subject="changed"), headers=headers)
    assert other.status_code == 400
    assert other.json()["error"] == "IdempotentRequestError"
    listed = await c.get(TICKETS, params={"external_id": "conv-1"})
    assert len(listed.json()["tickets"]) == 1


async def test_external_id_listing_returns_every_match(zd) -> None:
    _, c = zd
    await c.post(TICKETS, json=ticket_body("conv-7"))
    await c.post(TICKETS, json=ticket_body("conv-7"))
    await c.post(TICKETS, json=ticket_body("conv-8"))
    r = await c.get(TICKETS + ".json", params={"external_id": "conv-7"})
    assert [t["external_id"] for t in r.json()["tickets"]] == ["conv-7", "conv-7"]


async def test_search_lag_hides_new_tickets(zd) -> None:
    _, c = zd
    await c.post("/_sandbox/faults", json={"search_lag_s": 3600})
    await c.post(TICKETS, json=ticket_body("conv-lag"))
    query = {"query": "type:ticket custom_field_9001:conv-lag"}
    assert (await c.get("/zendesk/api/v2/search", params=query)).json()["count"] == 0
    await c.post("/_sandbox/faults", json={"search_lag_s": 0})
    found = (await c.get("/zendesk/api/v2/search.json", params=query)).json()
    assert found["count"] == 1
    assert found["results"][0]["result_type"] == "ticket"


async def test_search_terms(zd) -> None:
    _, c = zd
    await c.post(TICKETS, json=ticket_body("conv-a"))
    solved = ticket_body("conv-b", status="solved", tags=["other"])
    await c.post(TICKETS, json=solved)

    async def count(q: str) -> int:
        return int((await c.get("/zendesk/api/v2/search", params={"query": q})).json()["count"])

    assert await count("type:ticket requester:ana.silva@example.com") == 2
    assert await count("type:ticket status<solved") == 1
    assert await count("status:open") == 0
    assert await count("tags:bot_escalated") == 1
    assert await count("created>2000-01-01") == 2
    assert await count("type:user") == 0
    assert await count("refund") == 2


async def test_put_tags_replace_and_tags_endpoint_adds(zd) -> None:
    _, c = zd
    tid = (await c.post(TICKETS, json=ticket_body())).json()["ticket"]["id"]
    added = await c.put(f"{TICKETS}/{tid}/tags", json={"tags": ["intent_refund"]})
    assert added.json()["tags"] == ["bot_escalated", "intent_refund"]
    put = await c.put(f"{TICKETS}/{tid}", json={"ticket": {"tags": ["only_this"]}})
    assert put.json()["ticket"]["tags"] == ["only_this"]


async def test_each_comment_put_appends_one_comment(zd) -> None:
    _, c = zd
    tid = (await c.post(TICKETS, json=ticket_body())).json()["ticket"]["id"]
    note = {"ticket": {"comment": {"body": "agent summary", "public": False}}}
    await c.put(f"{TICKETS}/{tid}", json=note)
    await c.put(f"{TICKETS}/{tid}.json", json=note)
    comments = (await c.get(f"{TICKETS}/{tid}/comments")).json()["comments"]
    assert [x["public"] for x in comments] == [True, False, False]
    stats = (await c.get("/_sandbox/stats")).json()
    assert stats["duplicate_comments"] == 1


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"subject": "no wrapper"}, 400, "ticket"),
        ({"ticket": {"subject": "no comment"}}, 422, "base"),
        ({"ticket": {"comment": {"public": True}}}, 422, "comment"),
        ({"ticket": {"comment": {"body": "x"}, "priority": "asap"}}, 422, "priority"),
        ({"ticket": {"comment": {"body": "x"}, "type": "bug"}}, 422, "type"),
        (
            {"ticket": {"comment": {"body": "x"}, "custom_fields": [{"value": 1}]}},
            422,
            "custom_fields",
        ),
    ],
)
async def test_invalid_tickets_get_record_invalid(zd, body, status, field) -> None:
    _, c = zd
    r = await c.post(TICKETS, json=body)
    assert r.status_code == status
    err = r.json()
    assert err["error"] == "RecordInvalid"
    assert err["description"] == "Record validation errors"
    assert field in err["details"]


async def test_safe_update_conflict(zd) -> None:
    _, c = zd
    tid = (await c.post(TICKETS, json=ticket_body())).json()["ticket"]["id"]
    stale = {
        "ticket": {"status": "open", "safe_update": True, "updated_stamp": "2000-01-01T00:00:00Z"}
    }
    assert (await c.put(f"{TICKETS}/{tid}", json=stale)).status_code == 409
    assert (await c.get(f"{TICKETS}/999999")).status_code == 404
