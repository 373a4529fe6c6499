"""The one I/O seam of the connectors: ``VendorHttp`` around an injected ``httpx.AsyncClient``.

Every vendor call goes through :meth:`VendorHttp.send_once` (one HTTP exchange, mapped to
our errors) and :meth:`VendorHttp.with_retries` (the retry loop). What it applies:

- a per-request timeout (``RetryPolicy.timeout``);
- a client-side token bucket per vendor (:class:`TokenBucket`, clock and sleep injectable);
- retries with exponential backoff and full jitter on 5xx, timeouts and transport errors
  (``httpx.TransportError``, which includes ``RemoteProtocolError`` when the server drops
  the connection before answering: the write may or may not have happened);
- ``429``: the ``Retry-After`` header (seconds) is honoured as the delay;
- other ``4xx``: :class:`~handoff.exceptions.PermanentError` with the vendor's error body,
  trimmed and with the credentials scrubbed.

Non-idempotent writes pass a ``recheck`` coroutine: it runs before every retry and, when
it finds that the lost attempt did commit, its value is returned instead of re-sending.

Logs carry vendor, method, path (no query: it can hold e-mail addresses), status and
attempt. Headers and bodies are never logged, so tokens cannot leak through them.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from handoff.connectors.config import RateLimit, RetryPolicy
from handoff.exceptions import ConnectorError, PermanentError, RetryableError

log = logging.getLogger("handoff.connectors.http")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
T = TypeVar("T")

ERROR_BODY_LIMIT = 500
EPSILON = 1e-6


class TokenBucket:
    """Async token bucket: ``requests`` tokens, refilled continuously over ``per_seconds``.

    Callers queue on a lock, so waiting is first come, first served.
    """

    def __init__(
        self,
        limit: RateLimit,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.capacity = float(limit.requests)
        self.rate = limit.requests / limit.per_seconds
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> float:
        """Take one token, sleeping until one is available; returns the seconds waited."""
        waited = 0.0
        async with self._lock:
            self._refill()
            # The epsilon matters: a shortfall below the clock's float resolution would
            # sleep for a delay that never moves the clock, forever.
            while self._tokens < 1.0 - EPSILON:
                delay = max((1.0 - self._tokens) / self.rate, EPSILON)
                await self._sleep(delay)
                waited += delay
                self._refill()
            self._tokens = max(0.0, self._tokens - 1.0)
        return waited


@dataclass(frozen=True)
class Reply:
    """A successful (2xx) vendor answer."""

    status: int
    headers: httpx.Headers
    body: Any
    attempts: int = 1

    def get(self, key: str, default: Any = None) -> Any:
        return self.body.get(key, default) if isinstance(self.body, dict) else default


@dataclass
class Attempted:
    """What :meth:`VendorHttp.with_retries` returns: the value and how many tries it took."""

    value: Any
    attempts: int
    rechecked: bool = field(default=False)


def attempts_of(err: BaseException, default: int = 1) -> int:
    """Attempts recorded on an error raised by :meth:`VendorHttp.with_retries`."""
    value = getattr(err, "attempts", default)
    return value if isinstance(value, int) else default


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP-date: fall back to our own backoff


class VendorHttp:
    """Timeouts, rate limit, retries and error mapping for one vendor's base URL."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        vendor: str,
        base_url: str,
        headers: Mapping[str, str],
        secrets: Iterable[str] = (),
        retry: RetryPolicy | None = None,
        rate_limit: RateLimit | None = None,
        timeout: float | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.client = client
        self.vendor = vendor
        self.base_url = base_url.rstrip("/")
        self.policy = retry or RetryPolicy()
        self.timeout = timeout if timeout is not None else self.policy.timeout
        self._headers = dict(headers)
        self._secrets = tuple(s for s in secrets if s)
        self._sleep = sleep
        self._random = random
        self.bucket = TokenBucket(rate_limit, clock=clock, sleep=sleep) if rate_limit else None
        self.sent = 0  # HTTP exchanges attempted, for metrics and tests

    async def sleep(self, seconds: float) -> None:
        await self._sleep(seconds)

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Delay before try ``attempt + 1``: Retry-After if given, else capped full jitter."""
        if retry_after is not None:
            return retry_after
        cap = min(self.policy.max_delay, self.policy.base_delay * (2 ** (attempt - 1)))
        return self._random() * cap if self.policy.jitter else cap

    async def send_once(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        attempt: int = 1,
    ) -> Reply:
        """One exchange. Raises RetryableError or PermanentError; returns only on 2xx."""
        if self.bucket is not None:
            await self.bucket.acquire()
        self.sent += 1
        url = self.base_url + path
        all_headers = {**self._headers, **(headers or {})}
        try:
            response = await self.client.request(
                method,
                url,
                params=params,
                json=json,
                headers=all_headers,
                timeout=httpx.Timeout(self.timeout),
            )
        except httpx.TransportError as exc:
            kind = type(exc).__name__
            log.warning(
                "vendor_call vendor=%s method=%s path=%s status=- error=%s attempt=%d",
                self.vendor,
                method,
                path,
                kind,
                attempt,
            )
            raise RetryableError(f"{self.vendor} {method} {path}: {kind}") from None
        status = response.status_code
        log.info(
            "vendor_call vendor=%s method=%s path=%s status=%d attempt=%d",
            self.vendor,
            method,
            path,
            status,
            attempt,
        )
        if 200 <= status < 300:
            body: Any = None
            if response.content:
                try:
                    body = response.json()
                except ValueError:
                    body = response.text
            return Reply(status, response.headers, body, attempt)
        detail = redact(response.text.strip(), self._secrets)[:ERROR_BODY_LIMIT]
        message = f"{self.vendor} {method} {path} -> {status}: {detail}"
        if status == 429:
            raise RetryableError(message, status=status, retry_after=_retry_after(response))
        if status >= 500 or status == 408:
            raise RetryableError(message, status=status)
        raise PermanentError(message, status=status)

    async def with_retries(
        self,
        send: Callable[[int], Awaitable[T]],
        *,
        recheck: Callable[[], Awaitable[T | None]] | None = None,
    ) -> Attempted:
        """Run ``send(attempt)`` until it succeeds, a permanent error, or attempts run out.

        ``recheck`` runs after the backoff and before each retry; a non-None value means
        the earlier attempt committed, and is returned without sending again. On failure
        the raised error carries ``attempts`` (read it with :func:`attempts_of`).
        """
        attempt = 1
        while True:
            try:
                return Attempted(await send(attempt), attempt)
            except RetryableError as err:
                if attempt >= self.policy.max_attempts:
                    err.attempts = attempt  # type: ignore[attr-defined]
                    raise
                await self._sleep(self.backoff(attempt, err.retry_after))
            except ConnectorError as err:
                err.attempts = attempt  # type: ignore[attr-defined]
                raise
            if recheck is not None:
                found = await recheck()
                if found is not None:
                    return Attempted(found, attempt, rechecked=True)
            attempt += 1

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """``send_once`` with retries: for reads and writes that are safe to repeat."""

        async def send(attempt: int) -> Reply:
            return await self.send_once(
                method, path, params=params, json=json, headers=headers, attempt=attempt
            )

        done = await self.with_retries(send)
        reply: Reply = done.value
        return reply


class VendorConnector:
    """What every connector shares: its ``VendorHttp`` seam and closing a client it owns.

    Subclasses pass their vendor's auth headers and the secrets to scrub; ``sleep``,
    ``clock`` and ``random`` are test hooks (``None`` keeps the real ones).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        vendor: str,
        base_url: str,
        headers: Mapping[str, str],
        secrets: Iterable[str],
        timeout: float,
        retry: RetryPolicy | None,
        rate_limit: RateLimit | None,
        sleep: Sleep | None,
        clock: Clock | None,
        random: Callable[[], float] | None,
        owns_client: bool,
    ) -> None:
        hooks: dict[str, Any] = {
            k: v for k, v in (("sleep", sleep), ("clock", clock), ("random", random)) if v
        }
        self.http = VendorHttp(
            client,
            vendor=vendor,
            base_url=base_url,
            headers={"Accept": "application/json", **headers},
            secrets=secrets,
            retry=retry,
            rate_limit=rate_limit,
            timeout=timeout,
            **hooks,
        )
        self._owns_client = owns_client

    async def aclose(self) -> None:
        if self._owns_client:
            await self.http.client.aclose()
