"""HubSpotConnector against an in-memory HubSpot behind httpx.MockTransport."""

from __future__ import annotations

import logging

import httpx
import pytest
from pydantic import SecretStr

from handoff.connectors.config import HubSpotConfig
from handoff.connectors.hubspot import HubSpotConnector, body_token, build_body
from tests.connectors.fakes import NOW, FakeHubSpot, body

TOKEN = "pat-na1-secret"
CONFIG = HubSpotConfig(
    base_url="https://api.hubapi.test", token=SecretStr(TOKEN), search_poll_delay=2.0
)


@pytest.fixture
def hs() -> FakeHubSpot:
    return FakeHubSpot()


@pytest.fixture
async def connector(hs, fake_time, policy):
    client = httpx.AsyncClient(transport=httpx.MockTransport(hs))
    yield HubSpotConnector(
        CONFIG, client, retry=policy, sleep=fake_time.sleep, random=lambda: 1.0, now=lambda: NOW
    )
    await client.aclose()


async def test_exactly_one_contact_creates_associated_note(connector, hs, make_note_cmd):
    cid = hs.add_contact("ana@example.com")
    cmd = make_note_cmd()
    result = await connector.apply(cmd)
    assert result.status == "created" and result.crm_contact_id == cid
    assert result.kind == "crm_note" and result.external_id == "5000"
    (search,) = hs.sent("POST", "contacts/search$")
    assert body(search)["filterGroups"][0]["filters"][0] == {
        "propertyName": "email",
        "operator": "EQ",
        "value": "ana@example.com",
    }
    (create,) = hs.sent("POST", "^/crm/v3/objects/notes$")
    data = body(create)
    props = data["properties"]
    assert props["hs_timestamp"] == str(int(NOW.timestamp() * 1000))
    assert props["handoff_conversation_id"] == "conv-1"
    assert body_token("conv-1") in props["hs_note_body"]
    assert data["associations"] == [
        {
            "to": {"id": cid},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}],
        }
    ]
    assert hs.associations == {("5000", cid, 202)}


async def test_association_type_is_read_once_and_cached(connector, hs, make_note_cmd):
    hs.labels = [{"category": "HUBSPOT_DEFINED", "typeId": 190, "label": None}]
    hs.add_contact("ana@example.com")
    await connector.apply(make_note_cmd())
    await connector.apply(make_note_cmd(conversation_id="conv-2"))
    assert len(hs.sent("GET", "/labels$")) == 1
    assert {a[2] for a in hs.associations} == {190}


@pytest.mark.parametrize("contacts", [[], ["ana@example.com", "ana@example.com"]])
async def test_zero_or_several_contacts_unmatched(connector, hs, make_note_cmd, contacts):
    for email in contacts:
        hs.add_contact(email)
    result = await connector.apply(make_note_cmd())
    assert result.status == "unmatched_contact" and result.crm_contact_id is None
    assert result.external_id == "5000"
    assert body(hs.sent("POST", "^/crm/v3/objects/notes$")[0])["associations"] == []
    assert hs.associations == set() and hs.sent("GET", "/labels$") == []


async def test_no_email_is_unmatched_without_contact_search(connector, hs, make_note_cmd):
    from handoff.streams.commands import Contact

    result = await connector.apply(make_note_cmd(contact=Contact()))
    assert result.status == "unmatched_contact"
    assert hs.sent("POST", "contacts/search$") == []


async def test_note_found_by_search_is_patched(connector, hs, make_note_cmd):
    cid = hs.add_contact("ana@example.com")
    hs.notes["42"] = {"id": "42", "properties": {"handoff_conversation_id": "conv-1"}}
    hs.indexed.add("42")
    result = await connector.apply(make_note_cmd(body="resolved now"))
    assert result.status == "updated" and result.external_id == "42"
    assert hs.sent("POST", "^/crm/v3/objects/notes$") == []
    (patch,) = hs.sent("PATCH", "/notes/42$")
    assert body(patch)["properties"]["hs_note_body"].startswith("resolved now")
    assert ("42", cid, 202) in hs.associations
    search = body(hs.sent("POST", "notes/search$")[0])
    assert [g["filters"][0]["operator"] for g in search["filterGroups"]] == [
        "EQ",
        "CONTAINS_TOKEN",
    ]


async def test_note_found_by_body_token_fallback(connector, hs, make_note_cmd):
    hs.notes["43"] = {"id": "43", "properties": {"hs_note_body": f"x\nref {body_token('conv-1')}"}}
    hs.indexed.add("43")
    result = await connector.apply(make_note_cmd())
    assert result.status == "unmatched_contact" and result.external_id == "43"
    assert len(hs.sent("PATCH", "/notes/43$")) == 1


async def test_known_note_id_is_patched_even_before_search_sees_it(connector, hs, make_note_cmd):
    hs.add_contact("ana@example.com")
    first = await connector.apply(make_note_cmd())
    assert hs.indexed == set()  # search lags: the note is invisible to search
    second = await connector.apply(make_note_cmd(note_id=first.external_id, command_id="n2"))
    assert second.status == "updated" and second.external_id == first.external_id
    assert len(hs.notes) == 1


async def test_known_note_id_deleted_then_recreated(connector, hs, make_note_cmd):
    result = await connector.apply(make_note_cmd(note_id="999"))
    assert result.status == "unmatched_contact" and result.external_id == "5000"
    assert len(hs.notes) == 1


async def test_lost_create_is_found_by_search_before_retry(connector, hs, make_note_cmd, fake_time):
    hs.index_on_create = True
    hs.fail("POST", "^/crm/v3/objects/notes$", "lose")
    hs.add_contact("ana@example.com")
    result = await connector.apply(make_note_cmd())
    assert result.status == "created" and result.external_id == "5000"
    assert len(hs.notes) == 1 and len(hs.sent("POST", "^/crm/v3/objects/notes$")) == 1
    assert result.attempts == 1


async def test_lost_create_with_search_lag_polls_then_retries(
    connector, hs, make_note_cmd, fake_time
):
    # Search never catches up within the polls: the window the module docstring admits.
    hs.fail("POST", "^/crm/v3/objects/notes$", "lose")
    result = await connector.apply(make_note_cmd())
    assert result.status == "unmatched_contact" and result.attempts == 2
    # backoff, then three polls two seconds apart, then the second create
    assert fake_time.sleeps == [0.5, 2.0, 2.0]
    assert len(hs.sent("POST", "notes/search$")) == 1 + 3
    assert len(hs.notes) == 2  # the documented residual duplicate


async def test_lost_create_found_on_a_later_poll(connector, hs, make_note_cmd, fake_time):
    hs.fail("POST", "^/crm/v3/objects/notes$", "lose")
    searches = 0
    handle = hs.handle

    def lagging(request):
        nonlocal searches
        if request.url.path.endswith("notes/search"):
            searches += 1
            if searches == 3:  # the index catches up during the polls
                hs.indexed.update(hs.notes)
        return handle(request)

    hs.handle = lagging  # type: ignore[method-assign]
    result = await connector.apply(make_note_cmd())
    assert result.external_id == "5000" and len(hs.notes) == 1


async def test_429_5xx_and_permanent(connector, hs, make_note_cmd, fake_time):
    hs.fail("POST", "contacts/search$", status=429, headers={"Retry-After": "10"})
    hs.fail("POST", "notes/search$", status=500)
    result = await connector.apply(make_note_cmd())
    assert result.status == "unmatched_contact"
    assert fake_time.sleeps == [10.0, 0.5]
    hs.fail(
        "PATCH",
        "/notes/",
        status=400,
        body='{"category":"VALIDATION_ERROR","message":"Property values were not valid"}',
    )
    failed = await connector.apply(make_note_cmd(note_id=result.external_id))
    assert failed.status == "failed" and "VALIDATION_ERROR" in (failed.error or "")


async def test_token_not_logged(connector, hs, make_note_cmd, caplog):
    caplog.set_level(logging.DEBUG)
    hs.fail("POST", "contacts/search$", status=401, body=f'{{"message":"{TOKEN} expired"}}')
    result = await connector.apply(make_note_cmd())
    assert result.status == "failed"
    assert TOKEN not in caplog.text and TOKEN not in (result.error or "")


def test_body_truncation_keeps_the_ticket_link(make_note_cmd):
    url = "https://t.example/agent/tickets/100"
    long = "Summary line\n" + "é" * 5000 + f"\nTicket: {url}\n" + "tail " * 200
    cmd = make_note_cmd(body=long, ticket_url=url)
    out = build_body(cmd, 1000)
    assert len(out) <= 1000
    assert f"Ticket: {url}" in out and out.count(url) == 1
    assert out.endswith(f"ref {body_token('conv-1')}")
    assert "…" in out and out.startswith("Summary line")


def test_body_truncation_never_orphans_a_combining_mark(make_note_cmd):
    cmd = make_note_cmd(body="e\u0301" * 600, ticket_url=None)
    out = build_body(cmd, 300)
    head = out.split("…")[0]
    assert len(out) <= 300 and head.endswith("e\u0301")
    emoji = "\U0001f469\u200d\U0001f4bb"  # woman technologist: a ZWJ sequence
    out = build_body(make_note_cmd(body=emoji * 200, ticket_url=None), 300)
    assert out.split("…")[0].endswith(emoji)


def test_short_body_adds_missing_link_and_token(make_note_cmd):
    cmd = make_note_cmd(body="short", ticket_url="https://x/1")
    assert build_body(cmd, 65536) == f"short\n\nTicket: https://x/1\nref {body_token('conv-1')}"


async def test_redelivery_to_the_same_worker_patches_despite_search_lag(
    connector, hs, make_note_cmd
):
    hs.add_contact("ana@example.com")
    first = await connector.apply(make_note_cmd())
    assert hs.indexed == set()  # search has not caught up
    again = await connector.apply(make_note_cmd())  # no note_id: the result never came back
    assert again.status == "updated" and again.external_id == first.external_id
    assert len(hs.notes) == 1


async def test_cached_note_deleted_is_recreated(connector, hs, make_note_cmd):
    first = await connector.apply(make_note_cmd())
    del hs.notes[first.external_id]
    again = await connector.apply(make_note_cmd())
    assert again.external_id != first.external_id and len(hs.notes) == 1
