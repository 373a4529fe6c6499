"""The metrics oracle: the pure core applied offline to events, as the processor would.

Only input events (no connector results: the tests that use this run without
connectors) plus a count of dead letters.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from handoff.core import metrics as m
from handoff.core.decide import apply_event
from handoff.core.policy import Policy
from handoff.core.state import ConversationState
from handoff.streams.codec import decode_event


def offline_counters(lines: list[bytes], policy: Policy, dead_letters: int = 0) -> m.Counters:
    states: dict[str, ConversationState | None] = defaultdict(lambda: None)
    pending: dict[str, m.PendingSla | None] = defaultdict(lambda: None)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    total: m.Counters = {}
    for line in lines:
        event = decode_event(line)
        cid = event.conversation_id
        prev = states[cid]
        decision = apply_event(prev, event, now, policy)
        step = m.event_step(prev, event, decision, pending[cid])
        if step.pending_changed:
            pending[cid] = step.pending
        states[cid] = decision.state
        m.add_into(total, step.delta)
    for _ in range(dead_letters):
        m.add_into(total, m.dead_letter_delta())
    return m.merge(total)
