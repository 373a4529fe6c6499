"""Changelog-backed metrics: per-partition aggregate rows, written in the event's context.

Faust writes a table change to the changelog partition of the *event being processed*
(``Table._send_changelog`` uses ``event.message.partition``), and recovers that changelog
partition on the worker that owns the input partition. So a row whose key names the input
partition (``t:3``) is owned, written and recovered exactly like the conversations of
partition 3, whatever Kafka's partitioner would say about the key bytes. Keys:

- ``t:{p}``          the partition's totals, its event-time watermark, its open minute and
                     hour, and the starts of its closed windows
- ``m:{p}:{start}``  a closed tumbling minute of partition ``p``: ``{"c": counters}``
- ``h:{p}:{start}``  a closed tumbling hour
- ``sla:{conversation_id}`` a conversation waiting for its first agent reply (removed at
                     the reply); its key is per conversation, written in that
                     conversation's event context, so it is co-partitioned too.

Cost: an input that moves no metric writes nothing; one that does rewrites one row (the
totals, which hold the open windows), not one row per metric; a window gets its own row
once, when a newer one opens. Windows use event time
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
        # Decoded rows by key, with the bytes they were decoded from: a row is decoded
        # again only when the table holds other bytes (recovered from another worker's
        # writes, say), so the hot path pays one ``dumps`` per row and no ``loads``.
        self._decoded: dict[bytes, tuple[bytes, dict[str, Any]]] = {}

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
        """Add ``delta`` to the partition's totals and its windows: one row write.

        The open minute and hour live inside the totals row; a window gets its own row
        when a newer one opens (or when a late input lands in an already closed one).
        """
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
            for size, field in ((m.MINUTE, "m"), (m.HOUR, "h")):
                self._window(partition, total, field, size, m.window_start(when, size), delta)
        self._store(tkey, total)

    def _window(
        self,
        partition: int,
        total: dict[str, Any],
        field: str,
        size: int,
        start: int,
        delta: m.Counters,
    ) -> None:
        wm = total["w"]
        if m.expired(start, size, wm):
            return  # too late for a live window; it counts in the totals only
        open_key = f"open_{field}"
        current = total.get(open_key)
        if current is None or current["s"] == start:
            if current is None:
                current = total[open_key] = {"s": start, "c": {}}
            m.add_into(current["c"], delta)
        elif start > current["s"]:  # a newer window opens: the open one gets its own row
            total[field] = self._expire(partition, field, size, total[field], wm)
            if not m.expired(current["s"], size, wm):
                self._store(self._wkey(field, partition, current["s"]), {"c": current["c"]})
                total[field].append(current["s"])
            total[open_key] = {"s": start, "c": dict(delta)}
        else:  # late input for a closed window
            wkey = self._wkey(field, partition, start)
            row = self._load(wkey) or {"c": {}}
            m.add_into(row["c"], delta)
            self._store(wkey, row)
            if start not in total[field]:
                total[field].append(start)

    @staticmethod
    def _wkey(field: str, partition: int, start: int) -> bytes:
        return f"{field}:{partition}:{start}".encode()

    def _expire(
        self, partition: int, prefix: str, size: int, starts: list[int], wm: float
    ) -> list[int]:
        keep = []
        for s in starts:
            if m.expired(s, size, wm):
                k = self._wkey(prefix, partition, s)
                self._table.pop(k, None)
                self._decoded.pop(k, None)
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
        if raw is None:
            self._decoded.pop(k, None)
            return None
        cached = self._decoded.get(k)
        if cached is not None and (cached[0] is raw or cached[0] == raw):
            return cached[1]
        row: dict[str, Any] = orjson.loads(raw)
        return row

    def _read(self, k: bytes) -> dict[str, Any] | None:
        # Views get their own copy: the cached rows keep changing under the agent.
        raw = self._table.get(k)
        return None if raw is None else orjson.loads(raw)

    def _store(self, k: bytes, row: dict[str, Any]) -> None:
        raw = orjson.dumps(row)
        self._table[k] = raw
        self._decoded[k] = (raw, row)

    # --- reading (web views, any context) --------------------------------------------------

    def local(self, partitions: Iterable[int]) -> dict[str, Any]:
        """The rows of ``partitions`` (the caller passes the ones it actively owns)."""
        out: dict[str, Any] = {}
        for p in sorted(set(partitions)):
            total = self._read(f"t:{p}".encode())
            if total is None:
                out[str(p)] = {"total": {}, "watermark": None, "minutes": {}, "hours": {}}
                continue
            out[str(p)] = {
                "total": total["c"],
                "watermark": total["w"],
                "minutes": self._windows(p, "m", total),
                "hours": self._windows(p, "h", total),
            }
        return out

    def _windows(self, p: int, field: str, total: dict[str, Any]) -> dict[str, m.Counters]:
        out: dict[str, m.Counters] = {}
        for start in total[field]:
            row = self._read(self._wkey(field, p, start))
            if row is not None:
                out[str(start)] = row["c"]
        current = total.get(f"open_{field}")
        if current is not None:
            out[str(current["s"])] = current["c"]
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
