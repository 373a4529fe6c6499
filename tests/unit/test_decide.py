"""apply_event / apply_result: every reason code, edges, and the commands they emit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from handoff.core.decide import Decision, apply_event, apply_result, command_id
from handoff.core.policy import Policy, default_policy, parse_policy
from handoff.core.state import MAX_APPLIED_IDS, ConversationState
from handoff.streams.commands import ConnectorResult, CrmNoteCommand, TicketCommand
from handoff.streams.events import Event
from tests.strategies import EventFactory, replay

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
POLICY = default_policy()


def run(events: list[Event], policy: Policy = POLICY) -> tuple[ConversationState, list[Decision]]:
    state, decisions = replay(events, policy)
    assert state is not None
    return state, decisions


def tickets(decisions: list[Decision]) -> list[TicketCommand]:
    return [c for d in decisions for c in d.commands if isinstance(c, TicketCommand)]


def crm(decisions: list[Decision]) -> list[CrmNoteCommand]:
    return [c for d in decisions for c in d.commands if isinstance(c, CrmNoteCommand)]


@pytest.fixture
def f() -> EventFactory:
    return EventFactory("conv-1", "en")


# --- low_confidence ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("intent", "confidence", "escalates"),
    [
        ("order_status", 0.55, False),  # per-intent threshold 0.55: equal does not escalate
        ("order_status", 0.5499, True),
        ("order_status", 0.58, False),  # below the low tier (0.6) but above the override
        ("shipping_delay", 0.6, False),  # low tier 0.6
        ("shipping_delay", 0.5999, True),
        ("not_in_policy", 0.6, False),  # default section: low tier
        ("not_in_policy", 0.59, True),
    ],
)
def test_low_confidence_threshold_edges(
    f: EventFactory, intent: str, confidence: float, escalates: bool
) -> None:
    state, ds = run([f.started(), f.msg("where is it", intent, confidence)])
    assert state.escalated is escalates
    assert ("low_confidence" in ds[-1].reasons) is escalates


def test_high_tier_threshold(f: EventFactory) -> None:
    policy = parse_policy('[intents.billing]\ntier = "high"\n')
    assert not run([f.msg("invoice", "billing", 0.8)], policy)[0].escalated
    assert run([f.msg("invoice", "billing", 0.79)], policy)[0].reasons == ("low_confidence",)


def test_message_without_confidence_is_not_low_confidence(f: EventFactory) -> None:
    assert not run([f.msg("hello there friend")])[0].escalated


# --- risk_intent ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "intent", ["refund", "chargeback", "cancellation", "account_access", "security"]
)
def test_risk_intent_always_escalates(f: EventFactory, intent: str) -> None:
    state, ds = run([f.started(), f.msg("help", intent, 0.99)])
    assert ds[-1].escalated
    assert ds[-1].reasons == ("risk_intent",)
    (ticket,) = tickets(ds)
    assert ticket.action == "create"
    assert ticket.ticket_id is None
    assert ticket.idempotency_key == "conv-1:escalation:1"
    assert state.disposition == "escalated_to_agent"


# --- human_requested -----------------------------------------------------------------------


def test_handoff_requested_event(f: EventFactory) -> None:
    _state, ds = run([f.started(), f.handoff()])
    assert ds[-1].escalated and ds[-1].reasons == ("human_requested",)


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("talk to a human", "en"),
        ("hablar con un agente", "es"),
        ("quero falar com uma pessoa", "pt"),
    ],
)
def test_human_requested_in_words(text: str, lang: str) -> None:
    f = EventFactory("c", lang)
    _, ds = run([f.msg(text, "order_status", 0.9)])
    assert ds[-1].reasons == ("human_requested",)


def test_human_resources_is_not_a_request(f: EventFactory) -> None:
    assert not run([f.msg("question about human resources", "product_question", 0.9)])[0].escalated


# --- negative_sentiment --------------------------------------------------------------------


def test_sentiment_streak(f: EventFactory) -> None:
    _state, ds = run([f.msg("meh", sentiment=-0.6), f.bot(), f.msg("bad", sentiment=-0.7)])
    assert not ds[0].escalated
    assert ds[-1].reasons == ("negative_sentiment",)


def test_sentiment_exactly_at_threshold_is_not_negative(f: EventFactory) -> None:
    state, _ = run([f.msg("a", sentiment=-0.5), f.bot(), f.msg("b", sentiment=-0.5)])
    assert not state.escalated and state.negative_streak == 0


def test_sentiment_streak_breaks_on_non_negative(f: EventFactory) -> None:
    events = [f.msg("a", sentiment=-0.9), f.bot(), f.msg("b", sentiment=0.1), f.bot()]
    events += [f.msg("c", sentiment=-0.9)]
    state, _ = run(events)
    assert not state.escalated and state.negative_streak == 1


def test_message_without_sentiment_does_not_break_streak(f: EventFactory) -> None:
    events = [f.msg("a", sentiment=-0.9), f.bot(), f.msg("b"), f.bot(), f.msg("c", sentiment=-0.9)]
    assert run(events)[0].reasons == ("negative_sentiment",)


def test_sentiment_streak_from_policy(f: EventFactory) -> None:
    policy = parse_policy("sentiment_streak = 1\nsentiment_threshold = 0.0\n")
    assert run([f.msg("x", sentiment=-0.01)], policy)[0].reasons == ("negative_sentiment",)


def test_anger_escalates_at_once(f: EventFactory) -> None:
    _, ds = run([f.msg("WHERE IS MY ORDER", "order_status", 0.9, sentiment=0.0)])
    assert ds[-1].reasons == ("negative_sentiment",)


# --- missing_required_entity ---------------------------------------------------------------


def test_missing_entity_after_max_asks(f: EventFactory) -> None:
    events = [
        f.msg("change my address", "change_address", 0.9),
        f.bot("asked", "ask_order_id"),
        f.msg("I don't know it", "change_address", 0.9),
        f.bot("asked", "ask_order_id"),
    ]
    _state, ds = run(events)
    assert [d.escalated for d in ds] == [False, False, False, True]
    assert ds[-1].reasons == ("missing_required_entity",)
    (ticket,) = tickets(ds)
    assert "missing_required_entity" in ticket.tags_add


def test_entity_given_in_time_does_not_escalate(f: EventFactory) -> None:
    events = [
        f.msg("change my address", "change_address", 0.9),
        f.bot("asked", "ask_order_id"),
        f.msg("it is A-1", "change_address", 0.9, entities={"order_id": "A-1"}),
        f.bot("asked", "ask_order_id"),
    ]
    assert not run(events)[0].escalated


def test_ask_attributed_by_explicit_entity_field(f: EventFactory) -> None:
    events = [
        f.msg("change my address", "change_address", 0.9),
        f.bot("asked", "which_order", entity="order_id"),
        f.bot("asked", "which_order_again", entity="order_id"),
    ]
    state, ds = run(events)
    assert state.entity_asks == {"order_id": 2}
    assert ds[-1].reasons == ("missing_required_entity",)


def test_asks_for_other_entities_do_not_count(f: EventFactory) -> None:
    events = [
        f.msg("change my address", "change_address", 0.9),
        f.bot("asked", "ask_email"),
        f.bot("asked", "ask_email"),
    ]
    assert not run(events)[0].escalated


def test_max_entity_asks_from_policy(f: EventFactory) -> None:
    policy = parse_policy("max_entity_asks = 1\n[intents.x]\nrequired_entities = ['sku']\n")
    _, ds = run([f.msg("x", "x", 0.9), f.bot("asked", "ask_sku")], policy)
    assert ds[-1].reasons == ("missing_required_entity",)


# --- no_progress ---------------------------------------------------------------------------


def test_no_progress_counts_customer_turns(f: EventFactory) -> None:
    events = [
        f.msg("a", "product_question", 0.9),
        f.bot("failed", "faq"),
        f.msg("b", "product_question", 0.9),
        f.bot("asked", "clarify"),
        f.msg("c", "product_question", 0.9),
    ]
    _state, ds = run(events)
    assert [d.escalated for d in ds] == [False] * 4 + [True]
    assert ds[-1].reasons == ("no_progress",)


def test_no_progress_resets_on_answered(f: EventFactory) -> None:
    events = [
        f.msg("a", "product_question", 0.9),
        f.msg("b", "product_question", 0.9),
        f.bot("answered", "faq"),
        f.msg("c", "product_question", 0.9),
        f.msg("d", "product_question", 0.9),
    ]
    state, _ = run(events)
    assert not state.escalated and state.turns_without_progress == 2


# --- once per attempt ----------------------------------------------------------------------


def test_second_trigger_updates_only_with_new_reasons(f: EventFactory) -> None:
    events = [
        f.msg("refund", "refund", 0.95, entities={"order_id": "A-1"}),
        f.msg("refund", "refund", 0.95),  # same reason: nothing to send
        f.handoff(),  # new reason: an update
        f.handoff(),  # not new
    ]
    state, ds = run(events)
    kinds = [[(type(c).__name__, getattr(c, "action", None)) for c in d.commands] for d in ds]
    assert kinds == [
        [("TicketCommand", "create"), ("CrmNoteCommand", None)],
        [],
        [("TicketCommand", "update")],
        [],
    ]
    create, update = tickets(ds)
    assert create.idempotency_key == update.idempotency_key == "conv-1:escalation:1"
    assert update.escalation_reasons == ["risk_intent", "human_requested"]
    assert "human_requested" in update.private_note
    assert ds[0].escalated and not ds[2].escalated
    assert state.reasons == ("risk_intent", "human_requested")


def test_duplicate_event_changes_nothing(f: EventFactory) -> None:
    e = f.msg("refund", "refund", 0.9)
    first = apply_event(None, e, NOW, POLICY)
    again = apply_event(first.state, e, NOW, POLICY)
    assert again.duplicate and again.commands == () and again.state is first.state


def test_command_ids_are_deterministic(f: EventFactory) -> None:
    e = f.msg("refund", "refund", 0.9)
    a = apply_event(None, e, NOW, POLICY).commands
    b = apply_event(None, e, NOW, POLICY).commands
    assert [c.model_dump_json() for c in a] == [c.model_dump_json() for c in b]
    assert a[0].command_id == command_id("conv-1", e.event_id, "ticket", 0)
    assert a[0].command_id != a[1].command_id


# --- payload -------------------------------------------------------------------------------


def test_ticket_payload(f: EventFactory) -> None:
    g = EventFactory("conv-9", "pt-BR")
    events = [
        g.started(page="/orders", product_area="orders", app_version="3.1"),
        g.internal(plan_tier="enterprise", customer_tier="churn_risk_high"),
        g.identity(verified=True, email="  Ana@Example.COM ", name="Ana", customer_id="C-7"),
        g.msg("quero reembolso do pedido", "refund", 0.93, {"order_id": "A-1"}),
    ]
    del f
    _, ds = run(events)
    (t,) = tickets(ds)
    assert t.requester.model_dump() == {
        "email": "ana@example.com",
        "name": "Ana",
        "external_id": "C-7",
        "verified": True,
    }
    assert t.subject == "Refund: order A-1"
    assert t.tags_add == ["bot_escalated", "intent_refund", "lang_pt"]
    assert t.priority == "high" and t.ticket_type == "task"
    cf = t.custom_fields
    assert cf["bot_conversation_id"] == "conv-9"
    assert cf["plan_tier"] == "enterprise" and cf["customer_tier"] == "churn_risk_high"
    assert cf["order_id"] == "A-1" and cf["product_area"] == "orders" and cf["app_version"] == "3.1"
    assert "enterprise" in t.private_note  # agent-only
    for visible in (t.subject, t.public_description, " ".join(t.tags_add)):
        assert "enterprise" not in visible and "churn_risk_high" not in visible
    assert t.transcript_ref == "handoff://conversations/conv-9/transcript"
    assert t.dedupe_key == "ana@example.com|refund|order_id=A-1"
    assert "quero reembolso do pedido" in t.public_description


def test_unverified_identity_is_kept_apart(f: EventFactory) -> None:
    state, ds = run([f.identity(email="x@y.z"), f.identity(True, user_id="U1"), f.handoff()])
    assert state.claimed_identity == {"email": "x@y.z"}
    assert state.identity == {"user_id": "U1"}
    assert tickets(ds)[0].requester.verified is True
    assert tickets(ds)[0].requester.email is None


# --- late facts, reopen, closure -----------------------------------------------------------


def test_late_identity_updates_ticket_and_patches_crm(f: EventFactory) -> None:
    _, ds = run([f.handoff(), f.identity(email="Late@X.io")])
    cmds = ds[-1].commands
    assert [type(c).__name__ for c in cmds] == ["TicketCommand", "CrmNoteCommand"]
    ticket, note = cmds
    assert isinstance(ticket, TicketCommand) and isinstance(note, CrmNoteCommand)
    assert ticket.action == "update" and "Identity captured" in ticket.private_note
    assert ticket.requester.email == "late@x.io"
    assert note.contact.email == "late@x.io" and note.idempotency_key == "conv-1:crm-note"


def test_late_entities_update_ticket(f: EventFactory) -> None:
    _, ds = run([f.handoff(), f.msg("order A-9", entities={"order_id": "A-9"})])
    (t,) = ds[-1].commands
    assert isinstance(t, TicketCommand)
    assert t.action == "update" and t.custom_fields["order_id"] == "A-9"
    assert "order_id=A-9" in t.private_note


def test_reopen_is_a_new_attempt_on_the_same_ticket(f: EventFactory) -> None:
    state, ds = run([f.handoff()])
    create = ds[0].commands[0]
    state = _result(state, create.command_id, "ticket", "created", external_id="T-5").state
    state, more = replay([f.ticket("solved", "T-9"), f.ticket("reopened", "T-9")], POLICY, state)
    assert state is not None
    ds += more
    assert state.disposition == "reopened" and state.attempt == 2
    assert state.ticket_id == "T-5" and state.reported_ticket_id == "T-9"
    t, note = ds[-1].commands
    assert isinstance(t, TicketCommand) and isinstance(note, CrmNoteCommand)
    assert t.action == "update" and t.ticket_id == "T-5"
    assert t.idempotency_key == "conv-1:escalation:2"
    assert note.disposition == "reopened"
    assert sum(1 for t in tickets(ds) if t.action == "create") == 1
    # a further trigger in attempt 2 updates under the attempt-2 key
    _, more = replay([f.handoff()], POLICY, state)
    (upd,) = more[0].commands
    assert isinstance(upd, TicketCommand)
    assert upd.idempotency_key == "conv-1:escalation:2" and upd.action == "update"


def test_solved_sets_resolved_and_patches_crm(f: EventFactory) -> None:
    state, ds = run([f.handoff(), f.ticket("open", "T-5"), f.ticket("solved", "T-5")])
    assert state.disposition == "resolved"
    assert ds[1].commands == ()
    (note,) = ds[-1].commands
    assert isinstance(note, CrmNoteCommand) and note.disposition == "resolved"


def test_bot_resolved_conversation_gets_one_crm_note_and_no_ticket(f: EventFactory) -> None:
    events = [
        f.started(),
        f.msg("where is my order", "order_status", 0.9, {"order_id": "A-1"}),
        f.bot("answered", "lookup_order"),
        f.msg("thanks", "thanks", 0.99),
        f.closed("resolved"),
        f.csat(5),
    ]
    state, ds = run(events)
    assert tickets(ds) == []
    (note,) = crm(ds)
    assert note.disposition == "resolved_by_bot" and state.disposition == "resolved_by_bot"
    assert "where is my order" in note.body
    assert state.csat == 5


@pytest.mark.parametrize(
    ("reason", "disposition"), [("abandoned", "abandoned"), ("timeout", "timed_out")]
)
def test_abandoned_and_timeout(f: EventFactory, reason: str, disposition: str) -> None:
    state, ds = run([f.msg("hmm", "product_question", 0.9), f.closed(reason)])
    assert state.disposition == disposition
    (note,) = crm(ds)
    assert note.disposition == disposition


def test_closing_an_escalated_conversation_keeps_disposition(f: EventFactory) -> None:
    state, ds = run([f.handoff(), f.closed("abandoned")])
    assert state.disposition == "escalated_to_agent" and ds[-1].commands == ()


def test_agent_reask_is_counted(f: EventFactory) -> None:
    events = [f.msg("x", entities={"order_id": "A"}), f.agent(requested_fields=["order_id", "zip"])]
    assert run(events)[0].agent_reasks == 1


# --- apply_result --------------------------------------------------------------------------


def _result(
    state: ConversationState, cmd_id: str, kind: str, status: str, **kw: object
) -> Decision:
    r = ConnectorResult(
        conversation_id=state.conversation_id,
        command_id=cmd_id,
        kind=kind,
        status=status,
        **kw,  # type: ignore[arg-type]
    )
    return apply_result(state, r, NOW, POLICY)


def test_results_flow_into_later_commands(f: EventFactory) -> None:
    state, ds = run([f.handoff()])
    t, n = ds[0].commands
    d1 = _result(state, t.command_id, "ticket", "created", external_id="T-1", url="https://hd/T-1")
    assert d1.state.ticket_id == "T-1" and d1.state.ticket_url == "https://hd/T-1"
    (patch,) = d1.commands  # the CRM note learns the ticket link
    assert isinstance(patch, CrmNoteCommand) and patch.ticket_url == "https://hd/T-1"
    assert patch.body.startswith("Ticket: https://hd/T-1")
    d2 = _result(
        d1.state, n.command_id, "crm_note", "created", external_id="N-1", crm_contact_id="K-1"
    )
    assert d2.state.crm_note_id == "N-1" and d2.state.crm_contact_id == "K-1"
    assert d2.state.crm_note == "created"
    _, later = replay([f.identity(email="a@b.c")], POLICY, d2.state)
    t2, n2 = later[0].commands
    assert isinstance(t2, TicketCommand) and t2.ticket_id == "T-1"
    assert isinstance(n2, CrmNoteCommand) and n2.note_id == "N-1"
    assert n2.contact.crm_contact_id == "K-1"


def test_duplicate_result_is_ignored(f: EventFactory) -> None:
    state, _ = run([f.handoff()])
    d1 = _result(state, "cmd", "ticket", "failed", error="boom")
    d2 = apply_result(
        d1.state,
        ConnectorResult(
            conversation_id="conv-1", command_id="cmd", kind="ticket", status="failed", error="boom"
        ),
        NOW,
        POLICY,
    )
    assert d2.duplicate and d2.state is d1.state
    assert d1.state.failures == ("ticket: boom",)


def test_failed_crm_result_is_recorded(f: EventFactory) -> None:
    state, _ = run([f.handoff()])
    d = _result(state, "cmd", "crm_note", "failed", error="429")
    assert d.state.crm_note == "failed" and d.commands == ()


def test_unmatched_contact(f: EventFactory) -> None:
    state, _ = run([f.handoff()])
    d = _result(state, "cmd", "crm_note", "unmatched_contact", external_id="N-2")
    assert d.state.crm_note == "unmatched" and d.state.crm_note_id == "N-2"
    assert d.state.crm_contact_id is None


def test_deduplicated_onto_another_ticket_is_duplicate_merged(f: EventFactory) -> None:
    state, _ = run([f.handoff()])
    d = _result(state, "cmd", "ticket", "deduplicated", external_id="T-OLD", url="https://hd/T-OLD")
    assert d.state.disposition == "duplicate_merged" and d.state.ticket_id == "T-OLD"
    assert d.state.merged_into == "T-OLD"
    (note,) = d.commands
    assert isinstance(note, CrmNoteCommand) and note.disposition == "duplicate_merged"


def test_deduplicated_onto_our_own_ticket_is_not_a_merge(f: EventFactory) -> None:
    state, _ = run([f.handoff()])
    state = _result(state, "c1", "ticket", "created", external_id="T-1").state
    d = _result(state, "c2", "ticket", "deduplicated", external_id="T-1")
    assert d.state.disposition == "escalated_to_agent"


# --- state ---------------------------------------------------------------------------------


def test_state_round_trips(f: EventFactory) -> None:
    events = [
        f.started(page="/x"),
        f.internal(plan_tier="enterprise"),
        f.identity(True, email="a@b.c"),
        f.msg("WHERE IS IT", "order_status", 0.3, {"order_id": "A"}, -0.9),
        f.bot("failed", "lookup"),
        f.ticket("reopened"),
    ]
    state, _ = run(events)
    assert ConversationState.load(state.dump()) == state
    assert ConversationState.load(state.dump()).dump() == state.dump()


def test_applied_ids_are_bounded(f: EventFactory) -> None:
    state, _ = run([f.bot("answered") for _ in range(MAX_APPLIED_IDS + 10)])
    assert len(state.applied_ids) == MAX_APPLIED_IDS
    assert state.applied_ids[-1] == f"conv-1-e{MAX_APPLIED_IDS + 10}"


def test_bounded_message_history(f: EventFactory) -> None:
    events = [f.msg(f"message {i} " + "x" * 5000) for i in range(10)]
    state, _ = run(events, parse_policy("no_progress_turns = 100\n"))
    assert len(state.last_messages) == 3
    assert state.last_messages[0].startswith("message 7")
    assert all(len(m) <= 1000 for m in state.last_messages)
    assert state.first_message is not None and state.first_message.startswith("message 0")
