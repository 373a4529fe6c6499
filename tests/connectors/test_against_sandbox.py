"""All three connectors over real loopback HTTP against the local sandbox, with faults.

The sandbox runs on the test's own event loop and shares the test's fake clock: the
connectors' injected sleep advances it, so Retry-After and search lag pass without real
waiting. The sandbox's ``GET /_sandbox/stats`` is the judge of duplicates.
"""

from __future__ import annotations

import httpx
import pytest

from handoff.connectors.config import RateLimit, RetryPolicy
from handoff.connectors.dispatch import (
    build_note_connector,
    build_ticket_connector,
    sandbox_intercom_config,
)
from handoff.connectors.intercom import IntercomConnector
from handoff.connectors.sandbox import start_sandbox
from handoff.streams.commands import Contact, Requester
from tests.connectors.conftest import FakeTime, note_cmd, ticket_cmd

EPOCH = 1_788_000_000.0
RETRY = RetryPolicy(max_attempts=10, base_delay=0.2, max_delay=5.0, timeout=5.0)
EMAILS = ["ana.silva@example.com", "bob.jones@example.com", "shared@example.com", None]


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def sandbox(clock):
    running = await start_sandbox(clock=lambda: EPOCH + clock.now)
    yield running
    await running.stop()


@pytest.fixture
async def client():
    async with httpx.AsyncClient() as c:
        yield c


async def set_faults(client: httpx.AsyncClient, sandbox, **faults) -> None:
    r = await client.post(f"{sandbox.base_url}/_sandbox/faults", json=faults)
    assert r.status_code == 200, r.text


async def stats(client: httpx.AsyncClient, sandbox) -> dict:
    r = await client.get(f"{sandbox.base_url}/_sandbox/stats")
    return r.json()


def hooks(clock: FakeTime) -> dict:
    return {"sleep": clock.sleep, "clock": clock.clock}


def commands(n: int):
    for i in range(n):
        email = EMAILS[i % len(EMAILS)]
        conv = f"conv-{i}"
        yield (
            ticket_cmd(
                conversation_id=conv,
                requester=Requester(email=email, name=f"Customer {i}"),
                custom_fields={"order_id": f"ord-{i}", "plan_tier": "pro"},
            ),
            note_cmd(conversation_id=conv, contact=Contact(email=email)),
        )


async def test_zendesk_and_hubspot_under_faults_make_no_duplicates(sandbox, client, clock):
    tickets = build_ticket_connector(
        "sandbox", sandbox_url=sandbox.base_url, client=client, retry=RETRY, **hooks(clock)
    )
    notes = build_note_connector(
        "sandbox", sandbox_url=sandbox.base_url, client=client, retry=RETRY, **hooks(clock)
    )
    assert tickets is not None and notes is not None
    await set_faults(
        client,
        sandbox,
        error_rate=0.15,
        rate_limit_rate=0.1,
        retry_after=2,
        lost_response_rate=0.15,
        # shorter than backoff + the HubSpot connector's search polls (3 x 1 s)
        search_lag_s=1.5,
        seed=11,
    )
    results = []
    for ticket, note in commands(12):
        # Every command is delivered twice (a redelivery after a rebalance).
        for _ in range(2):
            results.append(await tickets.apply(ticket))
            results.append(await notes.apply(note))
    s = await stats(client, sandbox)
    assert s["faults"].get("lost_response", 0) > 0 and s["faults"].get("rate_limit", 0) > 0
    assert s["duplicate_tickets"] == 0
    assert s["duplicate_notes"] == 0
    assert s["duplicate_comments"] == 0
    assert s["tickets"] == 12 and s["notes"] == 12
    assert all(r.status != "failed" for r in results), [r.error for r in results]
    assert 2.0 in clock.sleeps  # Retry-After from the sandbox was honoured
    by_conv = {r.conversation_id: r for r in results if r.kind == "crm_note"}
    assert by_conv["conv-2"].status == "unmatched_contact"  # shared@: two contacts
    assert by_conv["conv-3"].status == "unmatched_contact"  # no email
    assert by_conv["conv-0"].crm_contact_id is not None
    await tickets.aclose()
    await notes.aclose()


async def test_crash_before_result_then_redelivery_to_a_new_worker(sandbox, client, clock):
    """The result of the first run is lost with its worker; a new one gets the command."""
    await set_faults(client, sandbox, search_lag_s=5)
    ticket, note = next(commands(1))
    first_t = build_ticket_connector("sandbox", sandbox_url=sandbox.base_url, client=client)
    first_n = build_note_connector("sandbox", sandbox_url=sandbox.base_url, client=client)
    assert first_t is not None and first_n is not None
    assert (await first_t.apply(ticket)).status == "created"
    assert (await first_n.apply(note)).status == "created"
    clock.now += 10  # the rebalance after the crash takes longer than the search lag
    tickets = build_ticket_connector(
        "sandbox", sandbox_url=sandbox.base_url, client=client, **hooks(clock)
    )
    notes = build_note_connector(
        "sandbox", sandbox_url=sandbox.base_url, client=client, **hooks(clock)
    )
    assert tickets is not None and notes is not None
    t, n = await tickets.apply(ticket), await notes.apply(note)
    assert (t.status, n.status) == ("updated", "updated")
    s = await stats(client, sandbox)
    assert (s["tickets"], s["notes"], s["duplicate_comments"]) == (1, 1, 0)


async def test_every_create_response_lost_still_one_of_each(sandbox, client, clock):
    tickets = build_ticket_connector(
        "sandbox", sandbox_url=sandbox.base_url, client=client, retry=RETRY, **hooks(clock)
    )
    notes = build_note_connector(
        "sandbox", sandbox_url=sandbox.base_url, client=client, retry=RETRY, **hooks(clock)
    )
    assert tickets is not None and notes is not None
    # search lag shorter than the note polls: the lost create is found before a retry
    await set_faults(client, sandbox, lost_response_rate=1.0, search_lag_s=1.5, seed=3)
    ticket, note = next(commands(1))
    t = await tickets.apply(ticket)
    n = await notes.apply(note)
    s = await stats(client, sandbox)
    assert (s["tickets"], s["notes"]) == (1, 1), s
    assert s["duplicate_comments"] == 0
    # Every answer is lost, so the connectors give up — without ever writing twice.
    assert t.status == "failed" and n.status == "failed"
    assert t.attempts == RETRY.max_attempts


async def test_intercom_converts_once_under_faults(sandbox, client, clock):
    conv_ids = []
    for _ in range(5):
        r = await client.post(f"{sandbox.base_url}/_sandbox/intercom/conversations", json={})
        assert r.status_code == 201, r.text
        conv_ids.append(str(r.json()["id"]))
    connector = IntercomConnector(
        sandbox_intercom_config(sandbox.base_url),
        client,
        retry=RETRY,
        rate_limit=RateLimit(requests=50, per_seconds=1.0),
        **hooks(clock),
    )
    await set_faults(
        client,
        sandbox,
        error_rate=0.15,
        rate_limit_rate=0.1,
        lost_response_rate=0.2,
        seed=5,
    )
    results = []
    for conv in conv_ids:
        cmd = ticket_cmd(
            conversation_id=f"chat-{conv}", custom_fields={"intercom_conversation_id": conv}
        )
        results += [await connector.apply(cmd), await connector.apply(cmd)]
    s = await stats(client, sandbox)
    assert s["duplicate_tickets"] == 0 and s["tickets"] == 5
    assert s["intercom_rejected"] == 0 and s["intercom_validated"] > 0
    assert all(r.status != "failed" for r in results), [r.error for r in results]
    r = await client.get(f"{sandbox.base_url}/_sandbox/tickets")
    assert all(t["comments"] >= 1 for t in r.json()["tickets"])
