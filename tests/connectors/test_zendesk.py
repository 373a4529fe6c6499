"""ZendeskConnector against an in-memory Zendesk behind httpx.MockTransport."""

from __future__ import annotations

import logging

import httpx
import pytest
from pydantic import SecretStr

from handoff.connectors.config import ZendeskConfig
from handoff.connectors.zendesk import ZendeskConnector, marker
from tests.connectors.fakes import NOW, FakeZendesk, body

TOKEN = "zd-api-token-123"
CONFIG = ZendeskConfig(
    base_url="https://acme.zendesk.test",
    email="bot@acme.test",
    api_token=SecretStr(TOKEN),
    bot_conversation_id_field_id=9001,
    custom_field_ids={"intent": 9002, "order_id": 9003, "invoice_id": 9004, "plan_tier": 9005},
)


@pytest.fixture
def zd() -> FakeZendesk:
    return FakeZendesk()


@pytest.fixture
async def connector(zd, fake_time, policy):
    client = httpx.AsyncClient(transport=httpx.MockTransport(zd))
    conn = ZendeskConnector(
        CONFIG,
        client,
        retry=policy,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        random=lambda: 1.0,
        now=lambda: NOW,
    )
    yield conn
    await client.aclose()


def field(ticket, fid):
    return next((f["value"] for f in ticket["custom_fields"] if f["id"] == fid), None)


async def test_create_sends_everything_once(connector, zd, make_ticket_cmd):
    cmd = make_ticket_cmd()
    result = await connector.apply(cmd)
    assert result.status == "created" and result.attempts == 1
    assert result.external_id == "100"
    assert result.url == "https://acme.zendesk.test/agent/tickets/100"
    assert result.idempotency_key == cmd.idempotency_key
    (post,) = zd.sent("POST", "^/api/v2/tickets$")
    assert post.headers["Idempotency-Key"] == "conv-1:escalation:1"
    assert post.headers["Authorization"].startswith("Basic ")
    ticket = body(post)["ticket"]
    assert ticket["external_id"] == "conv-1"
    assert ticket["comment"] == {"body": cmd.public_description, "public": True}
    assert ticket["requester"] == {"name": "Ana", "email": "ana@example.com"}
    assert ticket["priority"] == "high" and ticket["type"] == "problem"
    assert ticket["tags"] == ["bot_escalated", "intent_refund", "lang_pt"]
    fields = {f["id"]: f["value"] for f in ticket["custom_fields"]}
    assert fields == {9001: "conv-1", 9002: "refund", 9003: "42", 9005: "pro"}
    # Search-before-create order: external id, then the custom-field search, then dedupe.
    reads = [(r.method, r.url.path) for r in zd.requests][:3]
    assert reads == [("GET", "/api/v2/tickets"), ("GET", "/api/v2/search")] * 1 + [
        ("GET", "/api/v2/search")
    ]
    assert "custom_field_9001:conv-1" in zd.requests[1].url.params["query"]
    # The agent summary is a private comment with the marker, never public.
    assert zd.private_comments(100) == [f"{cmd.private_note}\n\n{marker(cmd.command_id)}"]
    assert [c["public"] for c in zd.comments[100]] == [True, False]
    assert len(zd.tickets) == 1


async def test_found_by_external_id_is_updated_not_created(connector, zd, make_ticket_cmd):
    zd.add_ticket(id=55, external_id="conv-1", tags=["vip", "agent_tag"])
    zd.indexed.clear()  # search has not caught up: the external id lookup alone finds it
    cmd = make_ticket_cmd()
    result = await connector.apply(cmd)
    assert result.status == "updated" and result.external_id == "55"
    assert zd.sent("POST", "^/api/v2/tickets$") == []
    (put,) = zd.sent("PUT", r"^/api/v2/tickets/55$")
    assert "tags" not in body(put)["ticket"]
    assert body(put)["ticket"]["comment"]["public"] is False
    (tags,) = zd.sent("PUT", r"^/api/v2/tickets/55/tags$")
    assert body(tags) == {"tags": ["bot_escalated", "intent_refund", "lang_pt"]}
    assert zd.tickets[55]["tags"] == [
        "vip",
        "agent_tag",
        "bot_escalated",
        "intent_refund",
        "lang_pt",
    ]


async def test_found_by_custom_field_search(connector, zd, make_ticket_cmd):
    zd.add_ticket(
        id=56, external_id="changed-by-agent", custom_fields=[{"id": 9001, "value": "conv-1"}]
    )
    result = await connector.apply(make_ticket_cmd())
    assert result.status == "updated" and result.external_id == "56"
    assert zd.sent("POST", "^/api/v2/tickets$") == []
    assert len(zd.tickets) == 1


async def test_search_hit_with_other_field_value_is_not_trusted(connector, zd, make_ticket_cmd):
    # A loose search match whose field holds another conversation must not be reused.
    t = zd.add_ticket(id=57, custom_fields=[{"id": 9001, "value": "conv-10"}])
    zd._search = lambda q: [{**t, "result_type": "ticket"}] if "9001" in q else []  # type: ignore[method-assign]
    result = await connector.apply(make_ticket_cmd())
    assert result.status == "created" and result.external_id != "57"


async def test_several_tickets_with_one_external_id_pick_the_oldest(connector, zd, make_ticket_cmd):
    zd.add_ticket(id=80, external_id="conv-1")
    zd.add_ticket(id=70, external_id="conv-1")
    result = await connector.apply(make_ticket_cmd())
    assert result.external_id == "70"


def dup_candidate(zd, **kw):
    base = dict(
        id=60,
        external_id="conv-0",
        requester={"email": "ana@example.com"},
        tags=["intent_refund", "bot_escalated"],
        custom_fields=[{"id": 9001, "value": "conv-0"}, {"id": 9003, "value": "42"}],
        created_at="2026-09-01T12:00:00Z",
    )
    base.update(kw)
    return zd.add_ticket(**base)


async def test_cross_conversation_duplicate(connector, zd, make_ticket_cmd):
    dup_candidate(zd)
    cmd = make_ticket_cmd(conversation_id="conv-2")
    result = await connector.apply(cmd)
    assert result.status == "deduplicated" and result.external_id == "60"
    assert zd.sent("POST", "^/api/v2/tickets$") == []
    (note,) = zd.private_comments(60)
    assert "conv-2" in note and "conv-0" in note and marker(cmd.command_id) in note
    query = zd.sent("GET", "/api/v2/search")[-1].url.params["query"]
    assert query == "type:ticket requester:ana@example.com status<solved tags:intent_refund"
    # Redelivery of the same command: same ticket, and no second note.
    again = await connector.apply(cmd)
    assert again.status == "deduplicated" and len(zd.private_comments(60)) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"created_at": "2026-09-01T11:00:00Z"},  # outside the 60-minute window
        {"status": "solved"},
        {"tags": ["intent_cancel"]},
        {"custom_fields": [{"id": 9003, "value": "43"}]},  # another order
        {"custom_fields": [{"id": 9003, "value": "42"}, {"id": 9004, "value": "INV-9"}]},
        {"requester": {"email": "bob@example.com"}},
    ],
)
async def test_not_a_duplicate(connector, zd, make_ticket_cmd, change):
    dup_candidate(zd, **change)
    cmd = make_ticket_cmd(
        conversation_id="conv-2", custom_fields={"order_id": "42", "invoice_id": "INV-1"}
    )
    result = await connector.apply(cmd)
    assert result.status == "created"


async def test_no_dedupe_without_order_or_invoice(connector, zd, make_ticket_cmd):
    dup_candidate(zd)
    result = await connector.apply(make_ticket_cmd(conversation_id="conv-2", custom_fields={}))
    assert result.status == "created"
    assert len(zd.sent("GET", "/api/v2/search")) == 1  # the dedupe search is not even sent


async def test_update_with_ticket_id_and_redelivery_adds_one_comment(
    connector, zd, make_ticket_cmd
):
    zd.add_ticket(id=90, external_id="conv-1", tags=["agent"])
    cmd = make_ticket_cmd(ticket_id="90", action="update", command_id="conv-1:cmd:2")
    first = await connector.apply(cmd)
    second = await connector.apply(cmd)  # redelivered after a crash before the commit
    assert first.status == second.status == "updated"
    assert zd.private_comments(90) == [f"{cmd.private_note}\n\n[handoff:conv-1:cmd:2]"]
    puts = zd.sent("PUT", r"^/api/v2/tickets/90$")
    assert "comment" in body(puts[0])["ticket"] and "comment" not in body(puts[1])["ticket"]
    assert all("tags" not in body(p)["ticket"] for p in puts)
    assert zd.tickets[90]["tags"][0] == "agent"


async def test_lost_comment_put_is_not_repeated(connector, zd, make_ticket_cmd, fake_time):
    zd.add_ticket(id=91, external_id="conv-1")
    zd.fail("PUT", r"^/api/v2/tickets/91$", "lose")
    cmd = make_ticket_cmd(ticket_id="91", action="update")
    result = await connector.apply(cmd)
    assert result.status == "updated"
    assert len(zd.private_comments(91)) == 1
    assert len(zd.sent("PUT", r"^/api/v2/tickets/91$")) == 1  # the recheck saw the marker


async def test_lost_create_response_is_replayed_by_idempotency_key(
    connector, zd, make_ticket_cmd, fake_time
):
    zd.fail("POST", "^/api/v2/tickets$", "lose")
    cmd = make_ticket_cmd()
    result = await connector.apply(cmd)
    assert result.status == "created" and result.attempts == 2
    posts = zd.sent("POST", "^/api/v2/tickets$")
    assert [p.headers["Idempotency-Key"] for p in posts] == [cmd.idempotency_key] * 2
    assert len(zd.tickets) == 1 and len(zd.private_comments(100)) == 1
    assert fake_time.sleeps == [0.5]
    # A redelivery (new process, same command) finds it by external id.
    again = await connector.apply(cmd)
    assert again.status == "updated" and again.external_id == "100"
    assert len(zd.tickets) == 1 and len(zd.private_comments(100)) == 1


async def test_429_retry_after_honoured(connector, zd, make_ticket_cmd, fake_time):
    zd.fail("GET", "^/api/v2/tickets$", status=429, headers={"Retry-After": "13"})
    result = await connector.apply(make_ticket_cmd())
    assert result.status == "created"
    assert fake_time.sleeps == [13.0]


async def test_5xx_then_success(connector, zd, make_ticket_cmd, fake_time):
    zd.fail("POST", "^/api/v2/tickets$", status=502, times=2)
    result = await connector.apply(make_ticket_cmd())
    assert result.status == "created" and result.attempts == 3
    assert fake_time.sleeps == [0.5, 1.0] and len(zd.tickets) == 1


async def test_timeouts_then_failed_result(connector, zd, make_ticket_cmd):
    zd.fail("GET", "^/api/v2/tickets$", "timeout", times=10)
    result = await connector.apply(make_ticket_cmd())
    assert result.status == "failed" and result.attempts == 4
    assert "ReadTimeout" in (result.error or "")
    assert zd.tickets == {}


async def test_permanent_4xx_is_failed_with_vendor_error(connector, zd, make_ticket_cmd):
    zd.fail(
        "POST",
        "^/api/v2/tickets$",
        status=422,
        body='{"error": "RecordInvalid", "description": "Requester email is invalid"}',
    )
    result = await connector.apply(make_ticket_cmd())
    assert result.status == "failed" and result.attempts == 1
    assert "RecordInvalid" in (result.error or "") and "422" in (result.error or "")
    assert len(zd.sent("POST", "^/api/v2/tickets$")) == 1


async def test_token_not_in_logs_or_errors(connector, zd, make_ticket_cmd, caplog):
    caplog.set_level(logging.DEBUG)
    zd.fail("POST", "^/api/v2/tickets$", status=401, body=f'{{"error": "bad {TOKEN}"}}')
    result = await connector.apply(make_ticket_cmd())
    assert TOKEN not in caplog.text and TOKEN not in (result.error or "")
    assert "Basic " not in caplog.text


async def test_apply_many_coalesces_updates_per_ticket(connector, zd, make_ticket_cmd):
    zd.add_ticket(id=1, external_id="conv-a")
    zd.add_ticket(id=2, external_id="conv-b")
    cmds = [
        make_ticket_cmd(
            conversation_id="conv-a",
            ticket_id="1",
            action="update",
            command_id=f"a{i}",
            private_note=f"note a{i}",
            tags_add=[f"t{i}", "common"],
            custom_fields={"order_id": f"o{i}"},
        )
        for i in range(3)
    ]
    other = make_ticket_cmd(conversation_id="conv-b", ticket_id="2", action="update")
    create = make_ticket_cmd(conversation_id="conv-c")
    batch = [cmds[0], other, cmds[1], create, cmds[2]]
    results = await connector.apply_many(batch)
    assert [r.command_id for r in results] == [c.command_id for c in batch]
    assert [r.status for r in results] == ["updated", "updated", "updated", "created", "updated"]
    (put,) = zd.sent("PUT", r"^/api/v2/tickets/1$")
    ticket = body(put)["ticket"]
    assert ticket["comment"]["body"].index("[handoff:a0]") < ticket["comment"]["body"].index(
        "[handoff:a2]"
    )
    assert field(zd.tickets[1], 9003) == "o2"  # the last value wins
    (tags,) = zd.sent("PUT", r"^/api/v2/tickets/1/tags$")
    assert body(tags)["tags"] == ["t0", "common", "t1", "t2"]
    # Replaying the batch adds no comment: every marker is already there.
    await connector.apply_many(batch)
    assert len(zd.private_comments(1)) == 1 and len(zd.tickets) == 3
