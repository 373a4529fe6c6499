"""Web views on two real processor workers: global metrics, routing, Prometheus, dashboard."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from handoff.broker import EmbeddedBroker
from handoff.core import metrics as m
from handoff.procs import WorkerProcess, fail_if_dead
from handoff.replay import replay
from handoff.worker import DEFAULT_POLICY, load_policy
from tests.integration.pipeline import Deployment, bad_lines, sample_lines
from tests.metrics_oracle import offline_counters
from tests.web import browser

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


async def poll(
    what: str,
    fetch: Callable[[], Awaitable[Any]],
    done: Callable[[Any], bool],
    workers: list[WorkerProcess],
    timeout: float = 90.0,
) -> Any:
    """Poll ``fetch`` until ``done(answer)``; fail with the last answer at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        fail_if_dead(workers)
        try:
            last = await fetch()
            if done(last):
                return last
        except httpx.HTTPError as exc:
            last = exc
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.log_path.name}\n{w.log_tail()}" for w in workers)
            raise AssertionError(f"{what}: not done after {timeout}s; last: {last!r}\n{logs}")
        await asyncio.sleep(0.25)  # polling interval, not synchronisation


def without_clock(totals: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in totals.items() if k not in m.CLOCK_COUNTERS}


def url(w: WorkerProcess, path: str) -> str:
    return f"http://127.0.0.1:{w.web_port}{path}"


@pytest.fixture
async def two_workers(
    broker: EmbeddedBroker, tmp_path: Path, unique_name: Callable[[str], str]
) -> Any:
    dep = await Deployment.create(broker, unique_name("web"), tmp_path, helpdesk="none", crm="none")
    try:
        a = dep.start_worker(data_dir="data-a")
        b = dep.start_worker(data_dir="data-b")
        async with httpx.AsyncClient(timeout=10) as client:

            async def health(w: WorkerProcess) -> Any:
                r = await client.get(url(w, "/health"))
                return r.json()

            # Both ready and between them owning all four partitions: no rebalance pending.
            async def both() -> list[Any]:
                return [await health(a), await health(b)]

            def settled(h: list[Any]) -> bool:
                parts = sorted(h[0]["active_partitions"] + h[1]["active_partitions"])
                return all(x["ready"] for x in h) and parts == [0, 1, 2, 3]

            await poll("both workers ready", both, settled, dep.workers)
            yield dep, a, b, client
    finally:
        dep.stop_all()


async def test_summary_from_either_worker_equals_the_offline_totals(two_workers: Any) -> None:
    dep, a, b, client = two_workers
    good, bad = sample_lines(), bad_lines()
    await replay(dep.broker.bootstrap, dep.names.events, good + bad)
    await dep.wait()
    expected = offline_counters(good, load_policy(DEFAULT_POLICY), dead_letters=len(bad))
    want = m.summarize(expected)

    for w in (a, b):

        async def summary(w: WorkerProcess = w) -> Any:
            return (await client.get(url(w, "/metrics/summary"))).json()

        got = await poll(
            f"summary on :{w.web_port}",
            summary,
            lambda s: s["cluster"]["complete"] and m.deterministic(s["counters"]) == expected,
            dep.workers,
        )
        assert without_clock(got["totals"]) == want["totals"]
        assert got["rates"] == want["rates"]
        for by in ("by_intent", "by_channel"):
            assert {k: without_clock(v["counts"]) for k, v in got[by].items()} == {
                k: v["counts"] for k, v in want[by].items()
            }
            assert {k: v["rates"] for k, v in got[by].items()} == {
                k: v["rates"] for k, v in want[by].items()
            }
        # The clock-dependent latency: one observation per escalation.
        assert got["totals"]["ticket_latency_count"] == want["totals"]["escalations"]
        assert got["by_reason"] == want["by_reason"]
        assert got["sla"]["p90_seconds"] == want["sla"]["p90_seconds"]
        assert len(got["cluster"]["workers"]) == 2
        # Event-time trend: the sample spans minutes, all inside the last day.
        assert (
            sum(r["conversations_started"] for r in got["trend"]["hours"])
            == (want["totals"]["conversations_started"])
        )
        assert got["totals"]["dead_letters"] == len(bad)

    # A conversation is answered by either worker (one of them forwards to the owner).
    state = await dep.table_state()
    cid = sorted(state)[0]
    for w in (a, b):
        r = await client.get(url(w, f"/conversations/{cid}"))
        assert r.status_code == 200
        assert r.json() == state[cid]
    assert (await client.get(url(a, "/conversations/no-such-conversation"))).status_code == 404

    # Prometheus text parses and carries the same totals.
    from prometheus_client.parser import text_string_to_metric_families

    text = (await client.get(url(a, "/metrics"))).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    started = families["handoff_conversations_started"]
    assert started.type == "counter"
    assert sum(s.value for s in started.samples) == want["totals"]["conversations_started"]
    reasons = families["handoff_escalation_reasons"]
    assert {s.labels["reason"] for s in reasons.samples} == set(want["by_reason"])
    assert families["handoff_metrics_complete"].samples[0].value == 1

    # The dashboard in a real headless browser shows the summary's rates.
    chromium = browser.find_chromium()
    if chromium is None:
        pytest.skip(browser.SKIP_REASON)
    ARTIFACTS.mkdir(exist_ok=True)
    dom = await asyncio.to_thread(
        browser.dump_dom, chromium, url(a, "/dashboard"), ARTIFACTS / "dashboard.png"
    )
    shown = browser.card_values(dom)
    summary = (await client.get(url(b, "/metrics/summary"))).json()
    for rate, value in summary["rates"].items():
        assert shown[rate] == browser.expected_text(rate, value), rate
    assert shown["dead_letters"] == str(len(bad))
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000


async def test_metrics_move_with_their_partitions_when_a_worker_leaves(two_workers: Any) -> None:
    """The rows are partition-scoped: the survivor recovers the leaver's from the changelog."""
    dep, a, b, client = two_workers
    good = sample_lines()
    await replay(dep.broker.bootstrap, dep.names.events, good)
    await dep.wait()
    expected = offline_counters(good, load_policy(DEFAULT_POLICY))

    async def summary() -> Any:
        return (await client.get(url(a, "/metrics/summary"))).json()

    def equal(s: Any) -> bool:
        return bool(s["cluster"]["complete"]) and m.deterministic(s["counters"]) == expected

    await poll("summary with two workers", summary, equal, dep.workers)
    b.stop()

    def alone(s: Any) -> bool:
        return equal(s) and list(s["cluster"]["workers"]) == [f"http://127.0.0.1:{a.web_port}"]

    got = await poll("summary after b left", summary, alone, dep.workers)
    assert got["cluster"]["workers"][f"http://127.0.0.1:{a.web_port}"] == [0, 1, 2, 3]
