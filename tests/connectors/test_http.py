"""VendorHttp: retries, backoff, Retry-After, error mapping, rate limiting, redaction."""

from __future__ import annotations

import logging

import httpx
import pytest

from handoff.connectors.config import RateLimit, RetryPolicy
from handoff.connectors.http import TokenBucket, VendorHttp, attempts_of
from handoff.exceptions import PermanentError, RetryableError

TOKEN = "s3cr3t-token-value"


def make(handler, fake_time, policy, **kw) -> VendorHttp:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return VendorHttp(
        client,
        vendor="test",
        base_url="https://vendor.test/base/",
        headers={"Authorization": f"Bearer {TOKEN}"},
        secrets=(TOKEN,),
        retry=policy,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        random=lambda: 0.5,
        **kw,
    )


def sequence(*responses):
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        item = responses[min(len(calls), len(responses)) - 1]
        if isinstance(item, Exception):
            raise item
        return item

    return handler, calls


async def test_success_joins_base_url_and_sets_timeout(fake_time, policy):
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    http = make(handler, fake_time, policy)
    reply = await http.request("GET", "/x", params={"a": "1"})
    assert reply.body == {"ok": True} and reply.attempts == 1
    assert str(seen[0].url) == "https://vendor.test/base/x?a=1"
    assert seen[0].extensions["timeout"] == httpx.Timeout(2.0).as_dict()
    assert fake_time.sleeps == []


async def test_5xx_retries_with_full_jitter_then_succeeds(fake_time, policy):
    handler, calls = sequence(
        httpx.Response(500), httpx.Response(503), httpx.Response(200, json={})
    )
    http = make(handler, fake_time, policy)
    reply = await http.request("POST", "/x", json={})
    assert reply.attempts == 3 and len(calls) == 3
    # random() = 0.5 times min(max_delay, base * 2**(n-1))
    assert fake_time.sleeps == [0.25, 0.5]


async def test_backoff_is_capped_and_without_jitter_is_the_cap(fake_time):
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=4.0, jitter=False)
    http = make(lambda r: httpx.Response(200), fake_time, policy)
    assert [http.backoff(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 4.0, 4.0]


async def test_429_honours_retry_after(fake_time, policy):
    handler, _ = sequence(
        httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json={})
    )
    http = make(handler, fake_time, policy)
    reply = await http.request("GET", "/x")
    assert reply.attempts == 2
    assert fake_time.sleeps == [7.0]


async def test_429_with_http_date_falls_back_to_backoff(fake_time, policy):
    handler, _ = sequence(
        httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}),
        httpx.Response(200, json={}),
    )
    http = make(handler, fake_time, policy)
    await http.request("GET", "/x")
    assert fake_time.sleeps == [0.25]


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
)
async def test_transport_errors_are_retried(fake_time, policy, exc):
    handler, calls = sequence(exc, httpx.Response(200, json={"id": 1}))
    http = make(handler, fake_time, policy)
    reply = await http.request("POST", "/x")
    assert reply.body == {"id": 1} and len(calls) == 2


async def test_retries_exhausted_raise_retryable_with_attempts(fake_time, policy):
    handler, calls = sequence(httpx.ReadTimeout("slow"))
    http = make(handler, fake_time, policy)
    with pytest.raises(RetryableError) as info:
        await http.request("GET", "/x")
    assert attempts_of(info.value) == 4 and len(calls) == 4 and len(fake_time.sleeps) == 3


async def test_4xx_is_permanent_with_trimmed_redacted_body(fake_time, policy):
    long_body = f'{{"error": "invalid", "echo": "{TOKEN}", "pad": "{"x" * 2000}"}}'
    handler, calls = sequence(httpx.Response(422, text=long_body))
    http = make(handler, fake_time, policy)
    with pytest.raises(PermanentError) as info:
        await http.request("POST", "/x")
    message = str(info.value)
    assert info.value.status == 422 and len(calls) == 1
    assert '"error": "invalid"' in message and TOKEN not in message
    assert len(message) < 700


async def test_recheck_runs_before_each_retry_and_can_stop_it(fake_time, policy):
    handler, calls = sequence(httpx.RemoteProtocolError("lost"), httpx.Response(200, json={}))
    http = make(handler, fake_time, policy)
    checks = []

    async def send(attempt):
        return await http.send_once("POST", "/x", attempt=attempt)

    async def recheck():
        checks.append(fake_time.now)
        return "found-it"

    done = await http.with_retries(send, recheck=recheck)
    assert done.value == "found-it" and done.rechecked and done.attempts == 1
    assert len(calls) == 1 and len(checks) == 1 and fake_time.sleeps == [0.25]


async def test_token_never_logged(fake_time, policy, caplog):
    caplog.set_level(logging.DEBUG)
    handler, _ = sequence(
        httpx.Response(500, text=f"oops {TOKEN}"),
        httpx.ReadTimeout("slow"),
        httpx.Response(401, text=f"bad token {TOKEN}"),
    )
    http = make(handler, fake_time, policy)
    with pytest.raises(PermanentError):
        await http.request("GET", "/x", params={"email": "ana@example.com"})
    assert TOKEN not in caplog.text and "Bearer" not in caplog.text
    ours = [r for r in caplog.records if r.name == "handoff.connectors.http"]
    assert len(ours) == 3
    # httpx's own INFO line carries the full URL (query included); ours never does.
    text = "\n".join(r.getMessage() for r in ours)
    assert "ana" not in text
    assert "status=500 attempt=1" in text and "status=401 attempt=3" in text


async def test_token_bucket_spacing_with_fake_clock(fake_time):
    bucket = TokenBucket(
        RateLimit(requests=2, per_seconds=1.0), clock=fake_time.clock, sleep=fake_time.sleep
    )
    stamps = []
    for _ in range(6):
        await bucket.acquire()
        stamps.append(fake_time.now - 1000.0)
    # A burst of two, then one every half second.
    assert stamps == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.5, 2.0])
    fake_time.now += 10  # idle time refills up to capacity only
    start = fake_time.now
    for _ in range(3):
        await bucket.acquire()
    assert fake_time.now - start == pytest.approx(0.5)


async def test_vendor_http_applies_rate_limit(fake_time, policy):
    handler, calls = sequence(httpx.Response(200, json={}))
    http = make(handler, fake_time, policy, rate_limit=RateLimit(requests=1, per_seconds=2.0))
    for _ in range(3):
        await http.request("GET", "/x")
    assert len(calls) == 3 and fake_time.sleeps == pytest.approx([2.0, 2.0])
