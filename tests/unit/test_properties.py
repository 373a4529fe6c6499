"""Hypothesis properties over random conversations: idempotence, determinism, one create,
one key per attempt, internal context never customer-visible."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handoff.core.decide import Decision
from handoff.core.policy import default_policy
from handoff.core.state import ConversationState
from handoff.streams.commands import CrmNoteCommand, TicketCommand
from handoff.streams.events import Event
from tests.strategies import INTERNAL_VALUES, conversations, redeliveries, replay

POLICY = default_policy()
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _wire(decisions: list[Decision]) -> list[str]:
    return [c.model_dump_json() for d in decisions for c in d.commands]


def _run(events: list[Event]) -> tuple[ConversationState, list[Decision]]:
    state, decisions = replay(events, POLICY)
    assert state is not None
    return state, decisions


@SETTINGS
@given(conversations())
def test_replay_is_deterministic(events: list[Event]) -> None:
    s1, d1 = _run(events)
    s2, d2 = _run(events)
    assert _wire(d1) == _wire(d2)
    assert s1.dump() == s2.dump()


@SETTINGS
@given(conversations())
def test_applying_twice_changes_nothing(events: list[Event]) -> None:
    state, _ = _run(events)
    again, second = replay(events, POLICY, state)
    assert again == state
    assert all(d.duplicate and d.commands == () for d in second)


@SETTINGS
@given(st.data())
def test_redeliveries_give_the_same_commands_and_state(data: st.DataObject) -> None:
    events = data.draw(conversations())
    noisy = data.draw(redeliveries(events))
    s1, d1 = _run(events)
    s2, d2 = _run(noisy)
    assert _wire(d1) == _wire(d2)
    assert s1 == s2
    assert sum(d.duplicate for d in d2) == len(noisy) - len(events)


@SETTINGS
@given(conversations())
def test_one_create_and_one_key_per_attempt(events: list[Event]) -> None:
    state, decisions = _run(events)
    tickets = [c for d in decisions for c in d.commands if isinstance(c, TicketCommand)]
    assert sum(t.action == "create" for t in tickets) <= 1
    if tickets:
        assert tickets[0].action == "create" or tickets[0].attempt > 1
    keys: dict[int, set[str]] = {}
    for t in tickets:
        keys.setdefault(t.attempt, set()).add(t.idempotency_key)
        assert t.idempotency_key == f"{t.conversation_id}:escalation:{t.attempt}"
    assert all(len(v) == 1 for v in keys.values())
    assert sum(d.escalated for d in decisions) <= 1
    assert state.escalated == bool(tickets)
    notes = [c for d in decisions for c in d.commands if isinstance(c, CrmNoteCommand)]
    assert {n.idempotency_key for n in notes} <= {f"{state.conversation_id}:crm-note"}
    ids = [c.command_id for d in decisions for c in d.commands]
    assert len(ids) == len(set(ids))


@SETTINGS
@given(conversations())
def test_internal_context_is_never_customer_visible(events: list[Event]) -> None:
    _, decisions = _run(events)
    for d in decisions:
        for c in d.commands:
            if isinstance(c, TicketCommand):
                visible = [
                    c.subject,
                    c.public_description,
                    *c.tags_add,
                    c.requester.model_dump_json(),
                ]
            else:
                visible = [c.body, *c.tags, c.contact.model_dump_json()]
            for value in INTERNAL_VALUES:
                assert all(value not in v for v in visible), (value, visible)


@SETTINGS
@given(conversations())
def test_state_round_trips(events: list[Event]) -> None:
    state, _ = _run(events)
    assert ConversationState.load(state.dump()) == state


@SETTINGS
@given(conversations())
def test_escalated_conversations_never_resolve_by_bot(events: list[Event]) -> None:
    _, decisions = _run(events)
    escalated = False
    for d in decisions:
        escalated = escalated or d.escalated
        for c in d.commands:
            if escalated and isinstance(c, CrmNoteCommand):
                assert c.disposition != "resolved_by_bot"
        assert len(d.state.last_messages) <= 3


@SETTINGS
@given(conversations())
def test_earlier_states_are_never_mutated(events: list[Event]) -> None:
    state: ConversationState | None = None
    snapshots = []
    for event in events:
        state, _ = replay([event], POLICY, state)
        assert state is not None
        snapshots.append((state, state.dump()))
    for snap, dumped in snapshots:
        assert snap.dump() == dumped
