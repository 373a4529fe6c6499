"""The HubSpot part of the sandbox, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from handoff.connectors.sandbox import RunningSandbox
from tests.connectors.sandbox_support import BEARER, running

NOTES = "/hubspot/crm/v3/objects/notes"


@pytest.fixture
async def hs() -> AsyncIterator[tuple[RunningSandbox, httpx.AsyncClient]]:
    async with running() as sb, httpx.AsyncClient(base_url=sb.base_url, headers=BEARER) as c:
        yield sb, c


def note(conv: str = "conv-1", body: str = "Escalated: refund", **props: Any) -> dict[str, Any]:
    properties = {
        "hs_timestamp": "2026-01-01T00:00:00Z",
        "hs_note_body": body,
        "handoff_conversation_id": conv,
        **props,
    }
    return {"properties": properties}


async def email_search(c: httpx.AsyncClient, email: str) -> dict[str, Any]:
    body = {
        "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}]
    }
    r = await c.post("/hubspot/crm/v3/objects/contacts/search", json=body)
    assert r.status_code == 200
    return dict(r.json())


async def test_contact_search_unique_and_ambiguous(hs) -> None:
    _, c = hs
    one = await email_search(c, "Ana.Silva@example.com")
    assert one["total"] == 1 and one["results"][0]["properties"]["firstname"] == "Ana"
    assert (await email_search(c, "shared@example.com"))["total"] == 2
    assert (await email_search(c, "nobody@example.com"))["total"] == 0
    await c.post("/_sandbox/hubspot/contacts", json={"email": "new@example.com", "firstname": "N"})
    assert (await email_search(c, "new@example.com"))["total"] == 1


async def test_bearer_auth_required(hs) -> None:
    sb, _ = hs
    async with httpx.AsyncClient(base_url=sb.base_url) as anon:
        r = await anon.post(NOTES, json=note())
    assert r.status_code == 401
    assert r.json()["category"] == "INVALID_AUTHENTICATION"


async def test_note_create_read_patch_and_associations(hs) -> None:
    _, c = hs
    labels = (await c.get("/hubspot/crm/associations/v4/notes/contacts/labels")).json()
    spec = labels["results"][0]
    assert spec["category"] == "HUBSPOT_DEFINED"
    contact_id = (await email_search(c, "bob.jones@example.com"))["results"][0]["id"]
    types = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": spec["typeId"]}]
    created = await c.post(
        NOTES, json={**note(), "associations": [{"to": {"id": contact_id}, "types": types}]}
    )
    assert created.status_code == 201
    note_id = created.json()["id"]
    patched = await c.patch(f"{NOTES}/{note_id}", json={"properties": {"hs_note_body": "Resolved"}})
    assert patched.status_code == 200
    got = await c.get(
        f"{NOTES}/{note_id}", params={"properties": "hs_note_body", "associations": "contacts"}
    )
    assert got.json()["properties"]["hs_note_body"] == "Resolved"
    assert got.json()["associations"]["contacts"]["results"][0]["id"] == contact_id
    other = (await c.post(NOTES, json=note("conv-2"))).json()["id"]
    put = await c.put(
        f"/hubspot/crm/v4/objects/notes/{other}/associations/contacts/{contact_id}", json=types
    )
    assert put.status_code == 200 and put.json()["toObjectId"] == int(contact_id)
    default = await c.put(
        f"/hubspot/crm/v4/objects/notes/{other}/associations/default/contacts/{contact_id}"
    )
    assert default.json()["status"] == "COMPLETE"


async def test_unknown_property_and_body_limit_are_validation_errors(hs) -> None:
    _, c = hs
    nid = (await c.post(NOTES, json=note())).json()["id"]
    bad = await c.patch(f"{NOTES}/{nid}", json={"properties": {"no_such_prop": "x"}})
    assert bad.status_code == 400
    err = bad.json()
    assert err["status"] == "error" and err["category"] == "VALIDATION_ERROR"
    assert err["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
    assert {"correlationId", "message", "context"} <= set(err)
    at_limit = await c.post(NOTES, json=note(body="x" * 65_536))
    assert at_limit.status_code == 201
    over = await c.post(NOTES, json=note(body="x" * 65_537))
    assert over.status_code == 400 and over.json()["category"] == "VALIDATION_ERROR"
    missing = await c.post(NOTES, json={"properties": {"hs_note_body": "no timestamp"}})
    assert missing.status_code == 400


async def test_note_search_tokens_and_lag(hs) -> None:
    _, c = hs
    await c.post("/_sandbox/faults", json={"search_lag_s": 3600})
    await c.post(NOTES, json=note("conv-9", body="handoff conv-9 escalated"))
    eq = {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "handoff_conversation_id", "operator": "EQ", "value": "conv-9"}
                ]
            }
        ]
    }
    token = {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "hs_note_body",
                        "operator": "CONTAINS_TOKEN",
                        "value": "escalated",
                    }
                ]
            }
        ]
    }
    assert (await c.post(NOTES + "/search", json=eq)).json()["total"] == 0
    await c.post("/_sandbox/faults", json={"search_lag_s": 0})
    assert (await c.post(NOTES + "/search", json=eq)).json()["total"] == 1
    assert (await c.post(NOTES + "/search", json=token)).json()["total"] == 1
    too_many = {"limit": 500}
    assert (await c.post(NOTES + "/search", json=too_many)).status_code == 400
