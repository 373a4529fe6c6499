"""``handoff demo``: the whole loop on this machine, then a summary.

Starts the embedded broker and the vendor sandbox, a processor worker and a connector
worker (real subprocesses, as in production), replays the bundled sample (or ``N``
generated conversations) plus a handful of malformed records, waits until both consumer
groups have caught up (committed offsets against the true end of every topic), and prints
what came out: dispositions, escalations by reason and intent, commands, connector results,
dead letters, and the sandbox's own count of tickets, notes and duplicates.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson

from handoff.broker import EmbeddedBroker, create_topics
from handoff.core.tally import render, tally
from handoff.procs import WorkerProcess, fail_if_dead, worker_env
from handoff.progress import read_all, wait_caught_up
from handoff.replay import read_lines, replay
from handoff.samples import generate_conversations, interleave
from handoff.streams.topics import TopicNames

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "sample_conversations.jsonl"
BAD = DATA / "sample_bad_events.jsonl"


def crm_contacts(lines: list[bytes]) -> list[dict[str, str]]:
    """CRM contacts for the sample's customers: most are known, every fifth is not.

    A real CRM knows most but not all chat customers; the unknown ones show the
    ``unmatched_contact`` path (the note is kept, never attached to a guess).
    """
    emails: dict[str, str] = {}
    for line in lines:
        try:
            ev = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        ident = ev.get("identity") if isinstance(ev, dict) else None
        if isinstance(ident, dict) and isinstance(ident.get("email"), str):
            emails.setdefault(ident["email"].strip().lower(), str(ident.get("name") or ""))
    out = []
    for i, (email, name) in enumerate(sorted(emails.items())):
        if i % 5 != 4:
            first, _, last = name.partition(" ")
            out.append({"email": email, "firstname": first, "lastname": last})
    return out


def sample_lines(conversations: int) -> list[bytes]:
    if conversations <= 0:
        good = list(read_lines(SAMPLE))
    else:
        convs = list(generate_conversations(conversations, seed=11))
        good = [orjson.dumps(e) for e in interleave(convs, random.Random(11))]
    return good + list(read_lines(BAD))


async def summarize(bootstrap: str, names: TopicNames) -> str:
    def decode(values: list[bytes]) -> list[dict[str, Any]]:
        return [orjson.loads(v) for v in values]

    t = tally(
        decode(await read_all(bootstrap, names.ticket_commands)),
        decode(await read_all(bootstrap, names.crm_commands)),
        decode(await read_all(bootstrap, names.dead_letters)),
        decode(await read_all(bootstrap, names.connector_results)),
    )
    return render(t)


def live_metrics(web_port: int, timeout: float = 20.0) -> str:
    """The processor's ``/metrics/summary`` headline, as the dashboard shows it."""
    deadline = time.monotonic() + timeout
    summary: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"http://127.0.0.1:{web_port}/metrics/summary", timeout=5)
            summary = dict(r.json()) if r.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            summary = {}
        if summary.get("cluster", {}).get("complete"):
            break
        time.sleep(0.2)  # polling interval until every partition answers
    if not summary:
        return f"{'live metrics':<26}unavailable on port {web_port}"

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v * 100:.1f}%"

    r = summary["rates"]
    csat = "-" if r["csat_average"] is None else f"{r['csat_average']:.2f}"
    return (
        f"{'live metrics':<26}resolution={pct(r['resolution_rate'])} "
        f"escalation={pct(r['escalation_rate'])} "
        f"duplicate_tickets={pct(r['duplicate_ticket_rate'])} "
        f"crm_match={pct(r['crm_match_rate'])} agent_reask={pct(r['agent_reask_rate'])} "
        f"csat={csat} sla_met={pct(r['sla_within_target'])} "
        f"dead_letters={summary['totals'].get('dead_letters', 0)}"
    )


def sandbox_stats(base_url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{base_url}/_sandbox/stats", timeout=10).json())


def run_demo(
    *, conversations: int = 0, serve: bool = False, web_port: int = 6066, log_level: str = "warning"
) -> int:
    from handoff.connectors.sandbox.server import SandboxThread

    names = TopicNames()
    t0 = time.monotonic()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="handoff-demo-")))
        broker = stack.enter_context(EmbeddedBroker())
        bootstrap = broker.bootstrap
        lines = sample_lines(conversations)
        sandbox = stack.enter_context(SandboxThread(contacts=crm_contacts(lines)))
        print(f"broker     {bootstrap}")
        print(f"sandbox    {sandbox.base_url}/_sandbox")
        asyncio.run(
            create_topics(
                bootstrap,
                [
                    names.events,
                    names.connector_results,
                    names.ticket_commands,
                    names.crm_commands,
                    names.dead_letters,
                ],
                partitions=4,
            )
        )
        env = worker_env(
            bootstrap,
            tmp / "data",
            sandbox_url=sandbox.base_url,
            log_level=log_level,
            helpdesk=os.environ.get("HANDOFF_HELPDESK", "sandbox"),
            crm=os.environ.get("HANDOFF_CRM", "sandbox"),
        )
        procs = {
            "processor": WorkerProcess(
                "processor", env, tmp / "processor.log", web_port if serve else None
            ),
            "connectors": WorkerProcess("connectors", env, tmp / "connectors.log"),
        }
        for proc in procs.values():
            proc.start()
            stack.callback(proc.stop)
        sent = asyncio.run(replay(bootstrap, names.events, lines))
        print(f"replayed   {sent} events into {names.events}")
        groups = {
            "handoff": [names.events, names.connector_results],
            "handoff-connectors": [names.ticket_commands, names.crm_commands],
        }
        try:
            took = asyncio.run(
                wait_caught_up(
                    bootstrap,
                    groups,
                    timeout=150,
                    check=lambda: fail_if_dead(list(procs.values())),
                )
            )
        except TimeoutError as exc:
            print(f"demo: {exc}; worker logs in {tmp}", file=sys.stderr)
            for proc in procs.values():
                print(proc.log_tail(3000), file=sys.stderr)
            return 1
        print(f"caught up  in {took:.1f}s after the replay\n")
        print(asyncio.run(summarize(bootstrap, names)))
        print(live_metrics(procs["processor"].web_port))
        stats = sandbox_stats(sandbox.base_url)
        print(
            f"{'sandbox':<26}tickets={stats.get('tickets')} notes={stats.get('notes')} "
            f"duplicate_tickets={stats.get('duplicate_tickets')} "
            f"duplicate_notes={stats.get('duplicate_notes')}"
        )
        print(f"\ndemo took {time.monotonic() - t0:.1f}s")
        if serve:
            print(f"serving    http://127.0.0.1:{web_port}/dashboard  (Ctrl-C to stop)")
            try:
                while all(p.is_running() for p in procs.values()):
                    time.sleep(1.0)  # waiting for Ctrl-C, not synchronising
            except KeyboardInterrupt:
                pass
    return 0
