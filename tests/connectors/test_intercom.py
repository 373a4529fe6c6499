"""IntercomConnector against an in-memory Intercom; every request is checked against the spec."""

from __future__ import annotations

import logging

import httpx
import pytest
from pydantic import SecretStr

from handoff.connectors.config import IntercomConfig
from handoff.connectors.intercom import IntercomConnector, linked_ticket_id
from tests.connectors import openapi_check
from tests.connectors.fakes import FakeIntercom, body

TOKEN = "ic-token-xyz"
BASE = "https://api.intercom.io"
CONFIG = IntercomConfig(
    base_url=BASE,
    token=SecretStr(TOKEN),
    admin_id="991267696",
    ticket_type_ids={"refund": "53"},
    default_ticket_type_id="1",
    ticket_url_template="https://app.intercom.test/inbox/conversation/{ticket_id}",
)
SENT: list[httpx.Request] = []


@pytest.fixture(scope="module", autouse=True)
def every_request_validated():
    before = openapi_check.VALIDATED
    yield
    validated = openapi_check.VALIDATED - before
    print(f"\nintercom: {validated} requests validated against intercom-2.16.yaml")
    assert validated == len(SENT) > 0


def validate(request: httpx.Request) -> None:
    SENT.append(request)
    openapi_check.check_headers(request)
    openapi_check.validate(request, base_url=BASE)


@pytest.fixture
def ic() -> FakeIntercom:
    fake = FakeIntercom()
    fake.validator = validate
    fake.add_conversation("123")
    return fake


@pytest.fixture
async def connector(ic, fake_time, policy):
    client = httpx.AsyncClient(transport=httpx.MockTransport(ic))
    yield IntercomConnector(CONFIG, client, retry=policy, sleep=fake_time.sleep, random=lambda: 1.0)
    await client.aclose()


def icmd(make_ticket_cmd, **kw):
    kw.setdefault("custom_fields", {"intercom_conversation_id": "123"})
    return make_ticket_cmd(**kw)


async def test_convert_then_note(connector, ic, make_ticket_cmd):
    cmd = icmd(make_ticket_cmd)
    result = await connector.apply(cmd)
    assert result.status == "created" and result.external_id == "700"
    assert result.url == "https://app.intercom.test/inbox/conversation/700"
    (convert,) = ic.sent("POST", "/convert$")
    assert body(convert) == {
        "ticket_type_id": "53",
        "attributes": {
            "_default_title_": cmd.subject,
            "_default_description_": cmd.public_description,
        },
    }
    (reply,) = ic.sent("POST", "/reply$")
    data = body(reply)
    assert data["message_type"] == "note" and data["type"] == "admin"
    assert data["admin_id"] == "991267696"
    assert "[handoff:conv-1:cmd:1]" in data["body"] and "<br>" in data["body"]
    assert ic.converts == 1 and len(ic.notes("123")) == 1


async def test_default_ticket_type_and_conversation_id_fallback(connector, ic, make_ticket_cmd):
    ic.add_conversation("456")
    cmd = make_ticket_cmd(conversation_id="456", intent="other", custom_fields={})
    result = await connector.apply(cmd)
    assert result.status == "created"
    assert body(ic.sent("POST", "/convert$")[0])["ticket_type_id"] == "1"


async def test_already_converted_is_found_not_converted_again(connector, ic, make_ticket_cmd):
    ic.add_conversation("124", ticket_id="555")
    cmd = icmd(make_ticket_cmd, custom_fields={"intercom_conversation_id": "124"})
    result = await connector.apply(cmd)
    assert result.status == "updated" and result.external_id == "555"
    assert ic.sent("POST", "/convert$") == [] and ic.converts == 0
    (put,) = ic.sent("PUT", "^/tickets/555$")
    assert body(put) == {"ticket_attributes": {"_default_title_": cmd.subject}}
    assert len(ic.notes("124")) == 1


async def test_redelivery_adds_no_second_note(connector, ic, make_ticket_cmd):
    cmd = icmd(make_ticket_cmd)
    first = await connector.apply(cmd)
    second = await connector.apply(cmd)
    assert (first.status, second.status) == ("created", "updated")
    assert second.external_id == first.external_id
    assert ic.converts == 1 and len(ic.notes("123")) == 1


async def test_lost_convert_is_found_before_retrying(connector, ic, make_ticket_cmd, fake_time):
    ic.fail("POST", "/convert$", "lose")
    result = await connector.apply(icmd(make_ticket_cmd))
    assert result.status == "created" and result.external_id == "700"
    assert ic.converts == 1 and len(ic.sent("POST", "/convert$")) == 1
    assert fake_time.sleeps == [0.5]


async def test_lost_note_reply_is_not_repeated(connector, ic, make_ticket_cmd):
    ic.fail("POST", "/reply$", "lose")
    result = await connector.apply(icmd(make_ticket_cmd))
    assert result.status == "created"
    assert len(ic.notes("123")) == 1 and len(ic.sent("POST", "/reply$")) == 1


async def test_update_with_known_ticket_and_disposition(connector, ic, make_ticket_cmd):
    ic.add_conversation("125", ticket_id="600")
    cmd = icmd(
        make_ticket_cmd,
        custom_fields={"intercom_conversation_id": "125"},
        ticket_id="600",
        action="update",
        disposition="resolved",
    )
    result = await connector.apply(cmd)
    assert result.status == "updated"
    assert body(ic.sent("PUT", "^/tickets/600$")[0])["open"] is False


async def test_429_and_5xx_are_retried(connector, ic, make_ticket_cmd, fake_time):
    ic.fail("GET", "^/conversations/123$", status=429, headers={"Retry-After": "3"})
    ic.fail("POST", "/convert$", status=503)
    result = await connector.apply(icmd(make_ticket_cmd))
    assert result.status == "created" and result.attempts == 2
    assert fake_time.sleeps == [3.0, 0.5] and ic.converts == 1


async def test_permanent_400_is_failed(connector, ic, make_ticket_cmd):
    ic.fail(
        "POST",
        "/convert$",
        status=400,
        body='{"type":"error.list","errors":[{"code":"parameter_invalid",'
        '"message":"Ticket type is not a customer ticket type"}]}',
    )
    result = await connector.apply(icmd(make_ticket_cmd))
    assert result.status == "failed" and "customer ticket type" in (result.error or "")


async def test_non_numeric_conversation_id_fails_without_calls(connector, ic, make_ticket_cmd):
    before = len(ic.requests)
    result = await connector.apply(make_ticket_cmd(conversation_id="web-abc", custom_fields={}))
    assert result.status == "failed" and len(ic.requests) == before


async def test_token_not_logged(connector, ic, make_ticket_cmd, caplog):
    caplog.set_level(logging.DEBUG)
    ic.fail("POST", "/convert$", status=401, body=f'{{"errors":[{{"message":"{TOKEN}"}}]}}')
    result = await connector.apply(icmd(make_ticket_cmd))
    assert TOKEN not in caplog.text and TOKEN not in (result.error or "")


def test_linked_ticket_id_reads_ticket_or_linked_objects():
    assert linked_ticket_id({"ticket": {"id": "9"}}) == "9"
    linked = {"linked_objects": {"data": [{"type": "conversation", "id": "1"}]}}
    assert linked_ticket_id(linked) is None
    linked["linked_objects"]["data"].append({"type": "ticket", "id": "2"})
    assert linked_ticket_id(linked) == "2"
    assert linked_ticket_id(None) is None
