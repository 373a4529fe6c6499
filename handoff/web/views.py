"""Web views on every processor worker (contract section 8).

- ``/health``: liveness (the view answers) and readiness (table recovery done, not
  rebalancing, partitions assigned); 503 until ready.
- ``/conversations/{id}``: answered by the worker that actively owns the conversation's
  partition; another worker forwards the request there (``app.router.route_req``, which
  maps the key to its partition and the partition to the owner's URL through the cluster
  map every member receives with its assignment).
- ``/metrics/local``: this worker's metrics rows for the partitions it actively owns
  (never its standbys, which would count twice).
- ``/metrics/summary``: GLOBAL. The same cluster map (``router.tables_metadata()``:
  worker URL -> changelog partitions it owns) names every peer; the view asks each for
  ``/metrics/local`` (itself without HTTP), merges the rows and reports which partitions
  answered: ``complete`` is true only when every partition did, exactly once.
- ``/metrics``: the summary's counters in Prometheus text format (``?scope=local`` for
  this worker's partitions only, for a Prometheus that scrapes every worker and sums).
- ``/dashboard`` and ``/dashboard/static/{name}``: the ops page, assets from the package.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
from faust.exceptions import SameNode
from faust.web.exceptions import ServiceUnavailable

from handoff.tables.conversations import TABLE_NAME as CONVERSATIONS
from handoff.tables.conversations import ConversationTable
from handoff.tables.metrics import TABLE_NAME as METRICS
from handoff.tables.metrics import MetricsTable, summarize_partitions
from handoff.web import dashboard, prometheus

log = logging.getLogger(__name__)

PEER_TIMEOUT = 5.0


class WebState:
    """What the views read: the app, the tables, and which topic names our partitions."""

    def __init__(
        self,
        app: Any,
        *,
        conversations: ConversationTable,
        metrics: MetricsTable,
        source_topic: str,
        partitions: int,
    ) -> None:
        self.app = app
        self.conversations = conversations
        self.metrics = metrics
        self.source_topic = source_topic
        self.partitions = partitions

    def ready(self) -> dict[str, Any]:
        app = self.app
        recovered = bool(app.tables.recovery.completed.is_set()) and not app.in_recovery
        actives = self.active_partitions()
        try:
            assigned = bool(app.consumer.assignment())
        except Exception:  # consumer not started yet
            assigned = False
        return {
            "ready": recovered and assigned and not app.rebalancing,
            "recovered": recovered,
            "assigned": assigned,
            "rebalancing": bool(app.rebalancing),
            "active_partitions": sorted(actives),
            "url": str(app.conf.canonical_url),
        }

    def active_partitions(self) -> set[int]:
        try:
            actives = self.app.assignor.assigned_actives()
        except Exception:
            return set()
        return {tp.partition for tp in actives if tp.topic == self.source_topic}

    def local_rows(self) -> dict[str, Any]:
        if not self.ready()["ready"]:
            return {"partitions": [], "rows": {}}
        parts = sorted(self.active_partitions())
        return {"partitions": parts, "rows": self.metrics.local(parts)}

    def peers(self) -> dict[str, list[int]]:
        """Worker URL -> partitions of the metrics changelog it actively owns."""
        changelog = self.metrics_changelog()
        out: dict[str, list[int]] = {}
        for url, topics in self.app.router.tables_metadata().items():
            out[str(url)] = sorted(topics.get(changelog, []))
        return out

    def metrics_changelog(self) -> str:
        return str(self.app.tables[METRICS].changelog_topic.get_topic_name())

    async def gather(self) -> dict[str, Any]:
        """Every worker's local rows, merged; ``complete`` when each partition answered once."""
        me = str(self.app.conf.canonical_url).rstrip("/")
        peers = self.peers()

        async def fetch(url: str) -> dict[str, Any]:
            if url.rstrip("/") == me:
                return self.local_rows()
            session = self.app.http_client
            async with session.get(
                f"{url.rstrip('/')}/metrics/local", timeout=PEER_TIMEOUT
            ) as resp:
                resp.raise_for_status()
                return dict(orjson.loads(await resp.read()))

        urls = sorted(peers)
        answers = await asyncio.gather(*(fetch(u) for u in urls), return_exceptions=True)
        rows: dict[str, Any] = {}
        seen: list[int] = []
        errors: dict[str, str] = {}
        for url, ans in zip(urls, answers, strict=True):
            if isinstance(ans, BaseException):
                errors[url] = f"{type(ans).__name__}: {ans}"
                continue
            for p, row in ans["rows"].items():
                if p not in rows:
                    rows[p] = row
                seen.append(int(p))
        complete = sorted(seen) == list(range(self.partitions))
        summary = summarize_partitions(rows, sla_target=self.metrics.sla_target)
        summary["cluster"] = {
            "complete": complete,
            "partitions": sorted(set(seen)),
            "expected_partitions": self.partitions,
            "workers": {u: peers[u] for u in urls},
            "errors": errors,
        }
        return summary


def register_views(app: Any, state: WebState) -> None:
    """Add the views to ``app`` (a Faust app with ``web_enabled``)."""

    def page(path: str) -> Callable[[Any], Any]:
        return app.page(
            path, name=f"handoff{path.replace('/', '_').replace('{', '').replace('}', '')}"
        )

    @page("/health")
    async def health(self: Any, request: Any) -> Any:
        body = state.ready()
        return self.json(body, status=200 if body["ready"] else 503)

    @page("/conversations/{conversation_id}")
    async def conversation(self: Any, request: Any, conversation_id: str) -> Any:
        key = conversation_id.encode()
        try:
            return await app.router.route_req(CONVERSATIONS, key, self.web, request)
        except SameNode:
            pass
        except ServiceUnavailable:
            return self.json({"error": "no owner for this conversation yet"}, status=503)
        row = state.conversations.raw(key)
        if row is None:
            return self.json({"error": f"conversation {conversation_id!r} not found"}, status=404)
        return self.json(row)

    @page("/metrics/local")
    async def metrics_local(self: Any, request: Any) -> Any:
        return self.json(state.local_rows())

    @page("/metrics/summary")
    async def metrics_summary(self: Any, request: Any) -> Any:
        return self.json(await state.gather())

    @page("/metrics")
    async def metrics_text(self: Any, request: Any) -> Any:
        if request.query.get("scope") == "local":
            local = state.local_rows()
            summary = summarize_partitions(local["rows"], sla_target=state.metrics.sla_target)
            summary["cluster"] = {
                "complete": True,
                "partitions": local["partitions"],
                "expected_partitions": len(local["partitions"]),
            }
        else:
            summary = await state.gather()
        # aiohttp refuses a charset inside ``content_type``; the header carries it whole.
        body = prometheus.render(summary).encode()
        return self.bytes(body, headers={"Content-Type": prometheus.CONTENT_TYPE})

    @page("/dashboard")
    async def dashboard_page(self: Any, request: Any) -> Any:
        return self.html(dashboard.page())

    @page("/dashboard/static/{name}")
    async def dashboard_static(self: Any, request: Any, name: str) -> Any:
        asset = dashboard.asset(name)
        if asset is None:
            return self.json({"error": "no such asset"}, status=404)
        body, content_type = asset
        return self.bytes(body, headers={"Content-Type": content_type})


__all__ = ["WebState", "register_views"]
