"""Changelog-backed metrics: per-partition aggregate rows, written in the event's context.

Faust writes a table change to the changelog partition of the *event being processed*
(``Table._send_changelog`` uses ``event.message.partition``), and recovers that changelog
partition on the worker that owns the input partition. So a row whose key names the input
partition (``t:3``) is owned, written and recovered exactly like the conversations of
partition 3, whatever Kafka's partitioner would say about the key bytes. Keys:

- ``t:{p}``          the partition's totals, its event-time watermark and the live window
                     starts: ``{"c": counters, "w": watermark, "m": [...], "h": [...]}``
- ``m:{p}:{start}``  one tumbling minute of partition ``p``: ``{"c": counters}``
- ``h:{p}:{start}``  one tumbling hour
- ``sla:{conversation_id}`` a conversation waiting for its first agent reply (removed at
                     the reply); its key is per conversation, written in that
                     conversation's event context, so it is co-partitioned too.

Cost: an input that moves no metric writes nothing; one that does rewrites three small
rows (total, minute, hour), not one row per metric. Windows use event time
(``occurred_at``), so a replay fills the same windows as the live run; connector results
and dead letters carry no event time and land in the partition's current windows (they
count in the totals exactly; their window is approximate). A window older than its
retention behind the partition's watermark is deleted (a changelog tombstone) when a
newer window opens.

Counts are exact under redelivery: a redelivered input is a duplicate decision, which
adds only ``duplicate_events``. A crash between the state write and the metrics write
(the same event, two changelog records) can lose that one event's increments.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import orjson

from handoff.core import metrics as m
from handoff.core.decide import Decision
from handoff.core.state import ConversationState
from handoff.streams.commands import ConnectorResult
from handoff.streams.events import AgentMessage, Event

TABLE_NAME = "metrics"


class MetricsTable:
    """Typed access to the metrics rows; ``record`` is called once per processed input."""

    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        *,
        sla_target: float = m.DEFAULT_SLA_TARGET_SECONDS,
    ) -> None:
        self._table = table
        self.sla_target = sla_target

    # --- writing (inside the processor's event context) ----------------------------------

    def observe(
        self,
        partition: int,
        previous: ConversationState | None,
        item: Event | ConnectorResult | None,
        decision: Decision | None,
        *,
        latency: float | None = None,
    ) -> None:
        """Fold one processed input: ``decision is None`` means it became a dead letter."""
        if decision is None or item is None:
            self.record(partition, m.dead_letter_delta(), None)
            return
        if isinstance(item, ConnectorResult):
            self.record(partition, m.result_step(previous, item, decision).delta, None)
            return
        cid = item.conversation_id
        pending = self._pending(cid) if isinstance(item, AgentMessage) else None
        step = m.event_step(previous, item, decision, pending, sla_target=self.sla_target)
        delta = step.delta
        if latency is not None and decision.escalated:
            delta = m.merge(delta, m.latency_delta(latency, decision.state))
        if step.pending_changed:
            self._set_pending(cid, step.pending)
        self.record(partition, delta, item.occurred_at.timestamp())

    def record(self, partition: int, delta: m.Counters, event_time: float | None) -> None:
        if not delta:
            return
        tkey = f"t:{partition}".encode()
        total = self._load(tkey) or {"c": {}, "w": None, "m": [], "h": []}
        m.add_into(total["c"], delta)
        wm = total["w"]
        if event_time is not None and (wm is None or event_time > wm):
            wm = total["w"] = event_time
        when = event_time if event_time is not None else wm
        if when is not None:
            for size, prefix, field in ((m.MINUTE, "m", "m"), (m.HOUR, "h", "h")):
                start = m.window_start(when, size)
                if m.expired(start, size, wm):
                    continue  # too late for a live window; it counts in the totals only
                if start not in total[field]:
                    total[field] = self._expire(partition, prefix, size, total[field], wm)
                    total[field].append(start)
                wkey = f"{prefix}:{partition}:{start}".encode()
                row = self._load(wkey) or {"c": {}}
                m.add_into(row["c"], delta)
                self._table[wkey] = orjson.dumps(row)
        self._table[tkey] = orjson.dumps(total)

    def _expire(
        self, partition: int, prefix: str, size: int, starts: list[int], wm: float
    ) -> list[int]:
        keep = []
        for s in starts:
            if m.expired(s, size, wm):
                self._table.pop(f"{prefix}:{partition}:{s}".encode(), None)
            else:
                keep.append(s)
        return keep

    def _pending(self, conversation_id: str) -> m.PendingSla | None:
        raw = self._table.get(f"sla:{conversation_id}".encode())
        if raw is None:
            return None
        data = orjson.loads(raw)
        return m.PendingSla(datetime.fromtimestamp(data["at"], UTC), int(data["attempt"]))

    def _set_pending(self, conversation_id: str, pending: m.PendingSla | None) -> None:
        k = f"sla:{conversation_id}".encode()
        if pending is None:
            self._table.pop(k, None)
        else:
            self._table[k] = orjson.dumps(
                {"at": pending.at.timestamp(), "attempt": pending.attempt}
            )

    def _load(self, k: bytes) -> dict[str, Any] | None:
        raw = self._table.get(k)
        return None if raw is None else orjson.loads(raw)

    # --- reading (web views, any context) --------------------------------------------------

    def local(self, partitions: Iterable[int]) -> dict[str, Any]:
        """The rows of ``partitions`` (the caller passes the ones it actively owns)."""
        out: dict[str, Any] = {}
        for p in sorted(set(partitions)):
            total = self._load(f"t:{p}".encode())
            if total is None:
                out[str(p)] = {"total": {}, "watermark": None, "minutes": {}, "hours": {}}
                continue
            out[str(p)] = {
                "total": total["c"],
                "watermark": total["w"],
                "minutes": self._windows(p, "m", total["m"]),
                "hours": self._windows(p, "h", total["h"]),
            }
        return out

    def _windows(self, p: int, prefix: str, starts: list[int]) -> dict[str, m.Counters]:
        out = {}
        for s in starts:
            row = self._load(f"{prefix}:{p}:{s}".encode())
            if row is not None:
                out[str(s)] = row["c"]
        return out


def summarize_partitions(
    rows: dict[str, Any], *, sla_target: float = m.DEFAULT_SLA_TARGET_SECONDS
) -> dict[str, Any]:
    """The summary over partition rows as :meth:`MetricsTable.local` returns them."""
    parts = list(rows.values())
    total = m.merge(*(p["total"] for p in parts))
    wms = [p["watermark"] for p in parts if p["watermark"] is not None]
    minutes = m.merge_windows({int(k): v for k, v in p["minutes"].items()} for p in parts)
    hours = m.merge_windows({int(k): v for k, v in p["hours"].items()} for p in parts)
    out = m.summarize(
        total, minutes, hours, watermark=max(wms) if wms else None, sla_target=sla_target
    )
    out["counters"] = total
    return out


__all__ = ["TABLE_NAME", "MetricsTable", "summarize_partitions"]
