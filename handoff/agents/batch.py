"""Batch mode of the processor (``HANDOFF_BATCH_SIZE``, default 100; 1 is the per-event path).

The per-event path (``Processor.handle``) sends each command, waits for its acknowledgement
and then writes the state. A batch (Faust's ``stream.take_events(n, within)``) does the same
steps once for all its inputs:

1. decide every input **in order**, each against the state the earlier inputs of the batch
   left (the table writes go to an in-memory :class:`Overlay`, read before the table);
2. produce every command and dead letter of the batch, in input order, and wait for all
   the acknowledgements together;
3. only then write the overlay to the tables: one write per changed conversation and per
   changed metrics row, each **under the context of the input that last changed it**.

Co-partitioning: Faust sends a table change to the changelog partition of the *current
event* (``Table.partition_for_key`` reads ``faust.streams.current_event()``, a contextvar).
In ``take_events`` the events are buffered by another task, so the agent's context holds no
event; :func:`event_context` sets that contextvar around each write, so the record of a
conversation goes to the changelog partition of its own input, like the per-event path.

Crash safety is unchanged: ``take_events`` acknowledges a batch's offsets only after the
agent body is done with it (after step 3), so a crash before then redelivers the whole
batch; its inputs are decided again on the state before the batch, giving the same
command ids and idempotency keys (the connectors deduplicate them), and an input the
table already holds is a duplicate (``applied_ids``), not applied twice.

A failed send never leaves the agent: the batch's records are produced again, with
backoff, until all are acknowledged (:mod:`handoff.agents.retry`); the overlay waits
meanwhile. If an exception left the ``async for``, Faust would close the generator, whose
``finally`` acknowledges the buffered events though their state was never written. A
worker that stops (SIGTERM, a rebalance) waits for the batch in hand: Faust drains the
stream before it commits and revokes.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event
from faust.types import EventT

from handoff.agents.processor import Processor, Step
from handoff.agents.retry import until_sent
from handoff.core.decide import Decision
from handoff.tables.metrics import MetricsTable

Produce = Callable[[str, bytes, bytes], Awaitable[Awaitable[Any]]]
"""``produce(topic, key, value)``: hand the record to the producer; returns its ack future."""

_MISSING = object()


@contextmanager
def event_context(event: EventT) -> Iterator[None]:
    """Make ``event`` Faust's current event (the one a table write is partitioned by)."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


class Overlay(MutableMapping[bytes, bytes]):
    """A table's pending writes in a batch: reads see them, the table gets them on ``flush``.

    Each write remembers ``self.event``, the input being handled; ``flush`` writes the last
    value of each key under the context of the input that wrote it.
    """

    def __init__(self, table: MutableMapping[bytes, bytes]) -> None:
        self._table = table
        self._pending: dict[bytes, tuple[bytes | None, EventT]] = {}
        self.event: EventT | None = None

    def _current(self) -> EventT:
        if self.event is None:
            raise RuntimeError("Overlay write outside of a batch input")
        return self.event

    def get(self, key: bytes, default: Any = None) -> Any:
        hit = self._pending.get(key)
        if hit is None:
            return self._table.get(key, default)
        return default if hit[0] is None else hit[0]

    def __getitem__(self, key: bytes) -> bytes:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value  # type: ignore[no-any-return]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[key] = (value, self._current())

    def __delitem__(self, key: bytes) -> None:
        if self.get(key, _MISSING) is _MISSING:
            raise KeyError(key)
        self._pending[key] = (None, self._current())

    def __iter__(self) -> Iterator[bytes]:
        for key in self._table:
            if key not in self._pending:
                yield key
        for key, (value, _) in self._pending.items():
            if value is not None:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> int:
        """Write every pending key to the table in its input's context; return how many."""
        n = len(self._pending)
        for key, (value, event) in self._pending.items():
            with event_context(event):
                if value is None:
                    self._table.pop(key, None)
                else:
                    self._table[key] = value
        self._pending.clear()
        self.event = None
        return n

    def discard(self) -> None:
        self._pending.clear()
        self.event = None


class BatchProcessor:
    """Decide a batch in order, send it, await all acks, then write the tables once."""

    def __init__(
        self,
        *,
        processor: Processor,
        conversations: Overlay,
        metrics: MetricsTable,
        metric_rows: Overlay,
        produce: Produce,
    ) -> None:
        # ``processor.table`` and ``metrics`` must read and write through the two overlays.
        self.processor = processor
        self.conversations = conversations
        self.metrics = metrics
        self.metric_rows = metric_rows
        self.produce = produce
        self.batches = 0

    async def handle(self, events: Sequence[EventT]) -> list[Decision | None]:
        steps: list[tuple[EventT, Step]] = []
        try:
            for event in events:
                msg = event.message
                self.conversations.event = event
                step = self.processor.decide(
                    msg.topic, msg.partition, msg.offset, msg.key, msg.value
                )
                self.processor.persist(step)  # into the overlay: later inputs see it
                steps.append((event, step))
            records = [rec for _, step in steps for rec in step.sends]
            if records:  # every record acknowledged before any state moves
                first = events[0].message
                await until_sent(
                    lambda: self._produce_all(records),
                    what=f"batch of {len(events)} from {first.topic}[{first.partition}]"
                    f"@{first.offset}",
                )
            now = time.time()
            for event, step in steps:
                msg = event.message
                decision = step.decision
                latency = now - msg.timestamp if decision and decision.escalated else None
                self.metric_rows.event = event
                self.metrics.observe(
                    msg.partition, step.previous, step.item, decision, latency=latency
                )
        except BaseException:
            self.conversations.discard()
            self.metric_rows.discard()
            raise
        self.conversations.flush()
        self.metric_rows.flush()
        self.batches += 1
        return [step.decision for _, step in steps]

    async def _produce_all(self, records: list[tuple[str, bytes, bytes]]) -> None:
        """Hand every record to the producer in order, then wait for all the acks."""
        acks = [await self.produce(*rec) for rec in records]
        for outcome in await asyncio.gather(*acks, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome


__all__ = ["BatchProcessor", "Overlay", "Produce", "event_context"]
