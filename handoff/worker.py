"""``handoff worker``: build the app for a role and run it under Faust's Worker.

The Faust CLI's default log level turns on a terminal spinner that sets the root logger to
DEBUG (measured: about 20% of throughput), so the worker is started here with an explicit
level and without the spinner.

A worker started before its broker waits for it: Faust itself exits at once with
``KafkaConnectionError: Unable to bootstrap`` (tested), so ``wait_for_broker`` first
retries a TCP connection with capped exponential backoff, logging one line when the broker
is unreachable and one when it answers. Once running, a dropped connection is Faust's and
aiokafka's to handle: they reconnect and the group rebalances (``tests/integration/
test_lost_broker.py``), but they log nothing at WARNING while the broker is gone, so
``watch_broker`` asks the broker for metadata every few seconds and logs one line when it
stops answering and one when it is back.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faust

from handoff.core.policy import Policy, load_policy
from handoff.settings import Settings

DEFAULT_POLICY = Path(__file__).parent / "data" / "policy.toml"

LOG_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def policy_for(settings: Settings) -> Policy:
    """Load and validate the policy; a bad policy stops the worker before it joins a group."""
    return load_policy(settings.policy_path or DEFAULT_POLICY)


def broker_addresses(broker: str) -> list[tuple[str, int]]:
    """``kafka://a:9092;kafka://b:9093`` (or comma-separated) -> ``[("a", 9092), ("b", 9093)]``."""
    out = []
    for part in broker.replace(";", ",").split(","):
        hostport = part.strip().split("://", 1)[-1].rstrip("/")
        if not hostport:
            continue
        host, _, port = hostport.rpartition(":")
        out.append((host or hostport, int(port) if port.isdigit() else 9092))
    return out


def _reachable(addresses: list[tuple[str, int]], timeout: float) -> bool:
    for host, port in addresses:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def wait_for_broker(
    broker: str,
    *,
    max_wait: float | None = None,
    first_delay: float = 0.5,
    max_delay: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Block until a broker of ``broker`` accepts TCP connections; False if ``max_wait`` passed.

    Logs one WARNING when the broker is first found unreachable and one INFO when it
    answers; the attempts in between are DEBUG.
    """
    log = logging.getLogger(__name__)
    addresses = broker_addresses(broker)
    start = clock()
    delay = first_delay
    attempts = 0
    while not _reachable(addresses, timeout=min(2.0, max_delay)):
        attempts += 1
        waited = clock() - start
        if attempts == 1:
            log.warning(
                "broker unreachable broker=%s; retrying with backoff up to %.0fs",
                broker,
                max_delay,
            )
        else:
            log.debug("broker still unreachable attempt=%d waited=%.1fs", attempts, waited)
        if max_wait is not None and waited >= max_wait:
            log.error("broker unreachable broker=%s; gave up after %.1fs", broker, waited)
            return False
        sleep(delay)
        delay = min(max_delay, delay * 2)
    if attempts:
        log.info(
            "broker reachable broker=%s after %.1fs and %d retries",
            broker,
            clock() - start,
            attempts,
        )
    return True


class BrokerWatch:
    """Broker reachability as seen from a worker: state changes become one log line each.

    ``probe`` returns whether the broker answered; ``misses`` failed probes in a row mean
    "lost" (one slow answer on a busy machine is not an outage).
    """

    def __init__(self, broker: str, misses: int = 2, clock: Callable[[], float] = time.monotonic):
        self.broker = broker
        self.misses = misses
        self.clock = clock
        self.failed = 0
        self.lost_at: float | None = None
        self.log = logging.getLogger(__name__)

    def observe(self, answered: bool) -> None:
        if answered:
            self.failed = 0
            if self.lost_at is not None:
                self.log.warning(
                    "broker connection back broker=%s after %.1fs",
                    self.broker,
                    self.clock() - self.lost_at,
                )
                self.lost_at = None
            return
        self.failed += 1
        if self.failed == self.misses and self.lost_at is None:
            self.lost_at = self.clock()
            self.log.warning(
                "broker connection lost broker=%s: no metadata answer %d times in a row; "
                "Faust keeps retrying",
                self.broker,
                self.misses,
            )


def watch_broker(app: Any, settings: Settings, interval: float = 3.0) -> BrokerWatch:
    """Probe the broker from the worker's loop every ``interval`` seconds (a Faust timer)."""
    from aiokafka import AIOKafkaClient

    from handoff.kafka_security import kafka_security

    watch = BrokerWatch(settings.broker)
    security = kafka_security(settings).aiokafka_kwargs()

    async def probe() -> None:
        client = AIOKafkaClient(
            bootstrap_servers=settings.bootstrap, request_timeout_ms=2000, **security
        )
        try:
            await asyncio.wait_for(client.bootstrap(), 2.0)
            answered = True
        except Exception:  # any failure to answer counts as a miss
            answered = False
        finally:
            await client.close()
        watch.observe(answered)

    app.timer(interval, name="handoff.broker_watch")(probe)
    return watch


def build_app(settings: Settings, role: str) -> Any:
    if role == "processor":
        from handoff.app import create_processor_app

        return create_processor_app(settings, policy_for(settings)).app
    from handoff.app import create_connector_app

    return create_connector_app(settings).app


def run_worker(settings: Settings, role: str = "processor") -> None:
    app = build_app(settings, role)  # a bad policy stops us here, before any waiting
    level = settings.log_level.upper()
    logging.basicConfig(level=level, format=LOG_FORMAT)
    wait_for_broker(settings.broker)
    watch_broker(app, settings)
    worker = faust.Worker(
        app,
        loglevel=level,
        quiet=True,
        redirect_stdouts=False,
        logging_config={
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"kv": {"format": LOG_FORMAT}},
            "handlers": {"err": {"class": "logging.StreamHandler", "formatter": "kv"}},
            "root": {"level": level, "handlers": ["err"]},
            # httpx logs full URLs at INFO, and Zendesk search queries hold customer emails.
            "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
        },
    )
    worker.spinner = None  # see the module docstring
    logging.getLogger(__name__).info(
        "worker starting role=%s app_id=%s broker=%s store=%s",
        role,
        settings.app_id,
        settings.broker,
        settings.store,
    )
    worker.execute_from_commandline()
