"""Zendesk and Intercom status webhooks: signatures verified, events keyed by conversation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from handoff.adapters.webhooks import create_ingest_app, intercom_signature, zendesk_signature
from handoff.streams.codec import decode_event

SAMPLES = Path(__file__).parent / "samples"
ZD_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="
IC_SECRET = "intercom-client-secret-for-tests"
TS = "2024-06-01T11:22:34Z"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def zd_headers(body: bytes, secret: str = ZD_SECRET, ts: str = TS) -> dict[str, str]:
    return {
        "X-Zendesk-Webhook-Signature": zendesk_signature(secret, ts, body),
        "X-Zendesk-Webhook-Signature-Timestamp": ts,
        "Content-Type": "application/json",
    }


def ic_headers(body: bytes, secret: str = IC_SECRET) -> dict[str, str]:
    return {"X-Hub-Signature": intercom_signature(secret, body)}


class Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []
        self.fail = False

    async def send(self, key: bytes, value: bytes) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append((key, value))


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
async def client(sink: Sink) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_ingest_app(zendesk_secret=ZD_SECRET, intercom_secret=IC_SECRET, send=sink.send)
    async with TestClient(TestServer(app)) as c:
        yield c


def only_event(sink: Sink) -> Any:
    ((key, value),) = sink.sent
    event = decode_event(value, key)  # a valid contract record whose key matches
    assert event.type == "ticket_status_changed"
    return event


def test_signatures_match_the_vendors_definitions() -> None:
    # Zendesk: base64(HMAC-SHA256(secret, timestamp + body)); Intercom: sha1= hex HMAC-SHA1.
    assert zendesk_signature("k", "t", b"b") == "eg1ema4MZIlIPAW7dCtH9PHHb3gy+gBIH6GUpkF93iI="
    assert intercom_signature("k", b"b") == "sha1=21f3ecf8ae69313b04b7f28478e174d764970e8f"


async def test_zendesk_status_changed(client: TestClient[Any, Any], sink: Sink) -> None:
    body = sample("zendesk_ticket_status_changed.json")
    r = await client.post("/ingest/zendesk", data=body, headers=zd_headers(body))
    assert r.status == 200, await r.text()
    ev = only_event(sink)
    assert (ev.conversation_id, ev.ticket_id, ev.status) == ("conv-7d1c", "5158", "solved")
    assert ev.event_id == "zendesk:cbe4028c-7239-495d-b020-f22348516046"
    assert (await r.json()) == {"accepted": ev.event_id}


async def test_zendesk_solved_to_open_is_reopened(client: TestClient[Any, Any], sink: Sink) -> None:
    body = sample("zendesk_ticket_reopened.json")
    r = await client.post("/ingest/zendesk", data=body, headers=zd_headers(body))
    assert r.status == 200
    assert only_event(sink).status == "reopened"


async def test_zendesk_trigger_body(client: TestClient[Any, Any], sink: Sink) -> None:
    body = sample("zendesk_trigger_ticket_status.json")
    r = await client.post("/ingest/zendesk", data=body, headers=zd_headers(body))
    assert r.status == 200
    ev = only_event(sink)
    assert (ev.conversation_id, ev.ticket_id, ev.status) == ("conv-91aa", "5160", "pending")


async def test_zendesk_other_event_is_ignored(client: TestClient[Any, Any], sink: Sink) -> None:
    body = sample("zendesk_ticket_priority_changed.json")
    r = await client.post("/ingest/zendesk", data=body, headers=zd_headers(body))
    assert r.status == 200 and (await r.json()) == {
        "ignored": "zen:event-type:ticket.priority_changed"
    }
    assert sink.sent == []


@pytest.mark.parametrize(
    "mangle",
    [
        lambda h, b: {
            **h,
            "X-Zendesk-Webhook-Signature": zd_headers(b, "wrong")["X-Zendesk-Webhook-Signature"],
        },
        lambda h, b: {**h, "X-Zendesk-Webhook-Signature-Timestamp": "2024-06-01T11:22:35Z"},
        lambda h, b: {k: v for k, v in h.items() if k != "X-Zendesk-Webhook-Signature"},
        lambda h, b: {k: v for k, v in h.items() if k != "X-Zendesk-Webhook-Signature-Timestamp"},
    ],
    ids=["wrong-secret", "other-timestamp", "no-signature", "no-timestamp"],
)
async def test_zendesk_bad_signature_is_401(
    client: TestClient[Any, Any], sink: Sink, mangle: Any
) -> None:
    body = sample("zendesk_ticket_status_changed.json")
    r = await client.post("/ingest/zendesk", data=body, headers=mangle(zd_headers(body), body))
    assert r.status == 401
    assert sink.sent == []


async def test_zendesk_tampered_body_is_401(client: TestClient[Any, Any], sink: Sink) -> None:
    body = sample("zendesk_ticket_status_changed.json")
    r = await client.post(
        "/ingest/zendesk", data=body.replace(b"SOLVED", b"CLOSED"), headers=zd_headers(body)
    )
    assert r.status == 401 and sink.sent == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "field 'body' is not valid JSON"),
        (b"[]", "field 'body' must be a JSON object"),
        (
            b'{"type": "zen:event-type:ticket.status_changed", "id": "x", "time": "2024-06-01T00:00:00Z", "detail": {"id": "1"}, "event": {"current": "OPEN"}}',  # noqa: E501
            "field 'detail.external_id' is required",
        ),
        (
            b'{"type": "zen:event-type:ticket.status_changed", "id": "x", "time": "2024-06-01T00:00:00Z", "detail": {"id": "1", "external_id": "c"}, "event": {"current": "ARCHIVED"}}',  # noqa: E501
            "field 'event.current' has unknown Zendesk status 'ARCHIVED'",
        ),
        (b'{"ticket": {"external_id": "c", "status": "open"}}', "field 'ticket.id' is required"),
        (
            b'{"ticket": {"id": 5, "external_id": "c", "status": "open", "updated_at": "yesterday"}}',  # noqa: E501
            "field 'occurred_at'",
        ),
    ],
)
async def test_zendesk_unparseable_is_400_naming_the_field(
    client: TestClient[Any, Any], sink: Sink, body: bytes, message: str
) -> None:
    r = await client.post("/ingest/zendesk", data=body, headers=zd_headers(body))
    assert r.status == 400
    assert (await r.json())["error"].startswith(message)
    assert sink.sent == []


async def test_intercom_conversation_closed(client: TestClient[Any, Any], sink: Sink) -> None:
    body = sample("intercom_conversation_admin_closed.json")
    r = await client.post("/ingest/intercom", data=body, headers=ic_headers(body))
    assert r.status == 200, await r.text()
    ev = only_event(sink)
    assert (ev.conversation_id, ev.ticket_id, ev.status) == ("215472398455233", "1295", "solved")
    assert ev.event_id == "intercom:notif_5a9b8c7d-1e2f-4a3b-9c8d-7e6f5a4b3c2d"
    assert ev.occurred_at.isoformat() == "2024-06-01T11:06:40+00:00"


async def test_intercom_ticket_state_updated(client: TestClient[Any, Any], sink: Sink) -> None:
    body = sample("intercom_ticket_state_updated.json")
    r = await client.post("/ingest/intercom", data=body, headers=ic_headers(body))
    assert r.status == 200
    ev = only_event(sink)
    assert (ev.conversation_id, ev.ticket_id, ev.status) == ("conv-44ef", "1295", "pending")


async def test_intercom_ticket_falls_back_to_linked_conversation(
    client: TestClient[Any, Any], sink: Sink
) -> None:
    payload = orjson.loads(sample("intercom_ticket_state_updated.json"))
    del payload["data"]["item"]["ticket_attributes"]["bot_conversation_id"]
    body = orjson.dumps(payload)
    r = await client.post("/ingest/intercom", data=body, headers=ic_headers(body))
    assert r.status == 200
    assert only_event(sink).conversation_id == "215472398455299"


async def test_intercom_ping_is_ignored(client: TestClient[Any, Any], sink: Sink) -> None:
    body = sample("intercom_ping.json")
    r = await client.post("/ingest/intercom", data=body, headers=ic_headers(body))
    assert r.status == 200 and (await r.json()) == {"ignored": "ping"}
    assert sink.sent == []


@pytest.mark.parametrize("signature", [None, "", "sha1=00", "sha256=abc"])
async def test_intercom_bad_signature_is_401(
    client: TestClient[Any, Any], sink: Sink, signature: str | None
) -> None:
    body = sample("intercom_conversation_admin_closed.json")
    headers = {"X-Hub-Signature": signature} if signature is not None else {}
    r = await client.post("/ingest/intercom", data=body, headers=headers)
    assert r.status == 401 and sink.sent == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"nope", "field 'body' is not valid JSON"),
        (b'{"type": "notification_event", "data": {"item": {}}}', "field 'topic' is required"),
        (
            b'{"topic": "conversation.admin.closed", "id": "n", "created_at": 1}',
            "field 'data.item' is required",
        ),
        (
            b'{"topic": "conversation.admin.closed", "id": "n", "data": {"item": {"type": "conversation", "id": "1"}}}',  # noqa: E501
            "field 'created_at' is required",
        ),
        (
            b'{"topic": "ticket.state.updated", "id": "n", "created_at": 1, "data": {"item": {"type": "ticket", "id": "1", "ticket_state": "lost"}}}',  # noqa: E501
            "field 'data.item.ticket_state' has unknown value 'lost'",
        ),
    ],
)
async def test_intercom_unparseable_is_400_naming_the_field(
    client: TestClient[Any, Any], sink: Sink, body: bytes, message: str
) -> None:
    r = await client.post("/ingest/intercom", data=body, headers=ic_headers(body))
    assert r.status == 400
    assert (await r.json())["error"].startswith(message)


async def test_broker_failure_is_503_so_the_vendor_retries(
    client: TestClient[Any, Any], sink: Sink
) -> None:
    sink.fail = True
    body = sample("intercom_conversation_admin_closed.json")
    r = await client.post("/ingest/intercom", data=body, headers=ic_headers(body))
    assert r.status == 503


async def test_unconfigured_secret_refuses(sink: Sink) -> None:
    app = create_ingest_app(zendesk_secret="", intercom_secret="", send=sink.send)
    async with TestClient(TestServer(app)) as c:
        body = sample("zendesk_ticket_status_changed.json")
        r = await c.post("/ingest/zendesk", data=body, headers=zd_headers(body, ""))
        assert r.status == 503
        assert "HANDOFF_ZENDESK_WEBHOOK_SECRET" in (await r.json())["error"]
        body = sample("intercom_ping.json")
        r = await c.post("/ingest/intercom", data=body, headers=ic_headers(body, ""))
        assert r.status == 503


async def test_redelivered_webhook_has_the_same_event_id(
    client: TestClient[Any, Any], sink: Sink
) -> None:
    body = sample("zendesk_ticket_status_changed.json")
    for _ in range(2):
        assert (
            await client.post("/ingest/zendesk", data=body, headers=zd_headers(body))
        ).status == 200
    assert sink.sent[0] == sink.sent[1]
