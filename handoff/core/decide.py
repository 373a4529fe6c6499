"""The decision: a pure function of (state, event or result, now, policy) -> Decision.

Rules the contract leaves open, chosen here:

- An entity ask is attributed from a ``bot_message`` with outcome ``asked``: an explicit
  extra field ``entity`` wins; else a step named ``ask_<entity>``, ``ask_for_<entity>``,
  ``collect_<entity>`` or ``request_<entity>``; else a step that is exactly a required
  entity of the current intent. ``missing_required_entity`` is decided at the ask that
  reaches ``max_entity_asks`` (or at any later customer message) while the current
  intent's required entity is still missing.
- A customer message without a sentiment score neither extends nor breaks the negative
  streak. Smalltalk intents never replace the current intent.
- Escalation happens once per attempt: the first trigger emits a ``create``; later
  triggers in the same attempt emit an ``update`` only for reasons not yet reported, or
  for late facts (identity, entities, internal context). At most one ticket command and
  one CRM command per event.
- ``conversation_closed`` after an escalation leaves the disposition alone (the ticket is
  still being worked); before one, it sets resolved_by_bot / abandoned / timed_out.
- A ticket result ``deduplicated`` whose ``external_id`` differs from the ticket we knew
  means the connector merged this escalation into another conversation's open ticket:
  the state takes that ticket and the disposition becomes ``duplicate_merged``.
- Once a CRM note exists it is patched when the requester, the disposition or the ticket
  link changes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from handoff.core import signals
from handoff.core.commands import command_id, crm_command, ticket_command
from handoff.core.policy import Policy
from handoff.core.state import (
    MAX_APPLIED_IDS,
    MAX_ENTITIES,
    MAX_FAILED_STEPS,
    MAX_FAILURES,
    MAX_INTENTS_SEEN,
    MAX_LAST_MESSAGES,
    MAX_STEPS_TRIED,
    ConversationState,
    clip,
    new_state,
    push,
    push_unique,
)
from handoff.streams import events as ev
from handoff.streams.commands import (
    REASON_CODES,
    ConnectorResult,
    CrmNoteCommand,
    ReasonCode,
    TicketCommand,
)

Command = TicketCommand | CrmNoteCommand
_ASK_PREFIXES = ("ask_for_", "ask_", "collect_", "request_")
_CLOSE_DISPOSITION = {
    "resolved": "resolved_by_bot",
    "abandoned": "abandoned",
    "timeout": "timed_out",
}
_SCALAR = (str, int, float, bool)


class Decision:
    """What applying one input did. ``duplicate``: already applied, nothing changed.
    ``escalated``: this input created the escalation. ``reasons``: the reason codes this
    input triggered (also when they were already reported).

    ``commands`` are built on first access, not when the decision is taken: building a
    ticket's summary and a CRM body is most of an event's cost, and offline callers
    (``handoff simulate``) never read them. The commands depend only on the new state and
    what the decision recorded, so building them later yields the same commands. Treat a
    decision as read-only.
    """

    __slots__ = ("_commands", "_pending", "duplicate", "escalated", "reasons", "state")

    def __init__(
        self,
        state: ConversationState,
        commands: tuple[Command, ...] = (),
        duplicate: bool = False,
        escalated: bool = False,
        reasons: tuple[ReasonCode, ...] = (),
        pending: Callable[[], tuple[Command, ...]] | None = None,
    ) -> None:
        self.state = state
        self._commands = commands
        self._pending = pending
        self.duplicate = duplicate
        self.escalated = escalated
        self.reasons = reasons

    @property
    def commands(self) -> tuple[Command, ...]:
        if self._pending is not None:
            self._commands = self._pending()
            self._pending = None
        return self._commands

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return (self.state, self.commands, self.duplicate, self.escalated, self.reasons) == (
            other.state,
            other.commands,
            other.duplicate,
            other.escalated,
            other.reasons,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Decision(state={self.state!r}, commands={self.commands!r}, "
            f"duplicate={self.duplicate!r}, escalated={self.escalated!r}, "
            f"reasons={self.reasons!r})"
        )


class _Draft:
    """A mutable copy of a state's fields; its ``__dict__`` becomes the new state's.

    Handlers replace containers (never mutate them in place): the new state shares every
    untouched container with the old one, which stays valid and unchanged.
    """

    @classmethod
    def of(cls, state: ConversationState) -> _Draft:
        """The draft of ``state`` (no ``__init__`` frame: one per event)."""
        d = _new(cls)
        d.__dict__ = state.__dict__.copy()
        return d

    if TYPE_CHECKING:  # attribute access is dynamic; plain object setattr at runtime

        def __getattr__(self, name: str) -> Any: ...

        def __setattr__(self, name: str, value: Any) -> None: ...


_FIELDS_SET = set(ConversationState.model_fields)
_EMPTY = new_state("-").__dict__
_EMPTY_DICTS = tuple(k for k, v in _EMPTY.items() if isinstance(v, dict))


def _fresh(conversation_id: str) -> ConversationState:
    """``new_state(conversation_id)`` without validating defaults (one per conversation).

    Every dict field gets its own empty dict, as validation would give it: handlers never
    mutate containers in place, but a caller of the state might.
    """
    fields = dict(_EMPTY)
    for k in _EMPTY_DICTS:
        fields[k] = {}
    fields["conversation_id"] = conversation_id
    return _build(fields)


_new = object.__new__
_set = object.__setattr__


def _build(fields: dict[str, Any]) -> ConversationState:
    """The new state from already-valid fields, without re-validation.

    What ``model_copy(update=...)`` does, minus copying the old ``__dict__`` first: the
    hot path runs this once per event. Every value was produced by a handler from
    validated input, so validating again would only cost time.
    """
    new = _new(ConversationState)
    _set(new, "__dict__", fields)
    _set(new, "__pydantic_fields_set__", _FIELDS_SET)
    _set(new, "__pydantic_extra__", None)
    _set(new, "__pydantic_private__", None)
    return new


class _Effects:
    """What the handlers decided beyond the state (a plain class: one per event)."""

    __slots__ = ("crm", "escalated", "notes", "reasons", "ticket")

    def __init__(self) -> None:
        self.ticket: str | None = None  # "create" | "update"
        self.notes: list[str] = []
        self.crm = False
        self.escalated = False
        self.reasons: tuple[ReasonCode, ...] = ()


# --- apply_event ---------------------------------------------------------------------------


def apply_event(
    state: ConversationState | None, event: ev.Event, now: datetime, policy: Policy
) -> Decision:
    """Apply one input event; pure and deterministic (``now`` is the only clock)."""
    if state is None:
        state = _fresh(event.conversation_id)
    eid = event.event_id
    if eid in state.applied_ids:
        return Decision(state, duplicate=True)
    d = _Draft.of(state)
    d.applied_ids = push(state.applied_ids, eid, MAX_APPLIED_IDS)
    d.updated_at = now
    if event.channel is not None:
        d.channel = event.channel
    if event.language is not None:
        d.language = event.language
    fx = _Effects()
    _HANDLERS[event.type](d, event, now, policy, fx)
    return _finish(state, d, fx, eid, policy)


def _finish(
    state: ConversationState,
    d: _Draft,
    fx: _Effects,
    source_id: str,
    policy: Policy,
) -> Decision:
    identity_moved = (
        d.identity is not state.identity or d.claimed_identity is not state.claimed_identity
    )
    # Unbound call: the draft has every field requester() reads.
    if (
        identity_moved
        and d.crm_note != "none"
        and ConversationState.requester(d) != state.requester()  # type: ignore[arg-type]
    ):
        fx.crm = True
    if fx.crm and d.crm_note == "none":
        d.crm_note = "pending"
    new = _build(d.__dict__)
    if fx.ticket is None and not fx.crm:
        return Decision(new, (), False, fx.escalated, fx.reasons)
    ticket, notes, crm = fx.ticket, fx.notes, fx.crm

    def build() -> tuple[Command, ...]:
        commands: list[Command] = []
        if ticket is not None:
            commands.append(
                ticket_command(
                    new,
                    ticket,
                    notes,
                    command_id(new.conversation_id, source_id, "ticket", 0),
                    policy,
                )
            )
        if crm:
            commands.append(
                crm_command(new, command_id(new.conversation_id, source_id, "crm_note", 1), policy)
            )
        return tuple(commands)

    return Decision(new, (), False, fx.escalated, fx.reasons, build)


def _trigger(d: _Draft, found: set[ReasonCode], now: datetime, fx: _Effects) -> None:
    """Escalate on ``found`` reasons: a create once per attempt, then updates for new ones."""
    if not found:
        return
    reasons = tuple(r for r in REASON_CODES if r in found)
    fx.reasons = reasons
    if not d.escalated:
        d.escalated = True
        d.attempt = d.attempt + 1
        d.reasons = reasons
        d.escalated_at = now
        d.disposition = "escalated_to_agent"
        fx.ticket = "create"
        fx.escalated = True
        fx.crm = True
        return
    fresh = tuple(r for r in reasons if r not in d.reasons)
    if fresh:
        d.reasons = d.reasons + fresh
        fx.ticket = fx.ticket or "update"
        fx.notes.append(f"New escalation reasons: {', '.join(fresh)}")


def _late_fact(d: _Draft, fx: _Effects, was_escalated: bool, note: str) -> None:
    if was_escalated:
        fx.ticket = fx.ticket or "update"
        fx.notes.append(note)


def _missing_entities(d: _Draft, policy: Policy) -> list[str]:
    required = policy.intent(d.intent).required_entities
    if not required:
        return []
    limit = policy.max_entity_asks
    asks = d.entity_asks
    return [e for e in required if e not in d.entities and asks.get(e, 0) >= limit]


def _on_started(d: _Draft, e: Any, now: datetime, policy: Policy, fx: _Effects) -> None:
    if d.started_at is None:
        d.started_at = e.occurred_at
    if e.context:
        merged = {**d.context, **e.context}
        d.context = dict(list(merged.items())[:MAX_ENTITIES])


def _on_identity(d: _Draft, e: Any, now: datetime, policy: Policy, fx: _Effects) -> None:
    # model_dump(exclude_none=True) minus the serializer: fields, then extras, in order;
    # only scalars are kept, and a scalar dumps as itself.
    ident = e.identity
    raw = ident.__dict__
    extra = ident.__pydantic_extra__
    if extra:
        raw = {**raw, **extra}
    fields = {k: clip(str(v), 320) for k, v in raw.items() if isinstance(v, _SCALAR)}
    target = "identity" if e.verified else "claimed_identity"
    current = getattr(d, target)
    changed = {k: v for k, v in fields.items() if current.get(k) != v}
    if not changed:
        return
    setattr(d, target, dict(list({**current, **changed}.items())[:MAX_ENTITIES]))
    shown = ", ".join(f"{k}={v}" for k, v in sorted(changed.items()))
    status = "verified" if e.verified else "unverified"
    _late_fact(d, fx, d.escalated, f"Identity captured after escalation ({status}): {shown}")


def _on_customer(d: _Draft, e: Any, now: datetime, policy: Policy, fx: _Effects) -> None:
    was_escalated = d.escalated
    text: str = e.text
    nlu = e.nlu
    d.customer_turns += 1
    d.turns_without_progress += 1
    short = clip(text)
    if d.first_message is None:
        d.first_message = short
    d.last_messages = push(d.last_messages, short, MAX_LAST_MESSAGES)
    ip = policy.intent(nlu.intent)
    if d.issue_message is None and not ip.smalltalk and (nlu.intent or len(text.split()) >= 3):
        d.issue_message = short
    if nlu.intent is not None and not ip.smalltalk:
        d.intent = nlu.intent
        d.confidence = nlu.confidence
        d.intents_seen = push_unique(d.intents_seen, nlu.intent, MAX_INTENTS_SEEN)
    if nlu.entities:
        changed = {
            k: v
            for k, v in nlu.entities.items()
            if v not in (None, "", [], {}) and d.entities.get(k) != v
        }
        if changed:
            merged = {**d.entities, **changed}
            d.entities = dict(list(merged.items())[:MAX_ENTITIES])
            shown = ", ".join(f"{k}={clip(str(v), 200)}" for k, v in sorted(changed.items()))
            _late_fact(d, fx, was_escalated, f"New details after escalation: {shown}")

    found: set[ReasonCode] = set()
    # policy.threshold(nlu.intent), from the intent policy already looked up
    threshold = ip.threshold if ip.threshold is not None else policy.tiers[ip.tier].threshold
    if nlu.confidence is not None and nlu.confidence < threshold:
        found.add("low_confidence")
    if ip.always_escalate and nlu.intent is not None:
        found.add("risk_intent")
    if signals.asks_for_human(text, d.language):
        d.human_requested = True
        found.add("human_requested")
    sentiment = nlu.sentiment
    if sentiment is not None:
        d.sentiment_last = sentiment
        d.sentiment_min = sentiment if d.sentiment_min is None else min(d.sentiment_min, sentiment)
        d.negative_streak = d.negative_streak + 1 if sentiment < policy.sentiment_threshold else 0
    angry = signals.is_angry(text)
    if angry:
        d.angry = True
    if angry or d.negative_streak >= policy.sentiment_streak:
        found.add("negative_sentiment")
    if _missing_entities(d, policy):
        found.add("missing_required_entity")
    if d.turns_without_progress >= policy.no_progress_turns:
        found.add("no_progress")
    _trigger(d, found, now, fx)


def asked_entity(event: ev.BotMessage, required: tuple[str, ...]) -> str | None:
    """The entity a bot ``asked`` step asks for (rules in the module docstring)."""
    explicit = (event.model_extra or {}).get("entity")
    if isinstance(explicit, str) and explicit:
        return explicit
    step = (event.step or "").strip().lower()
    for prefix in _ASK_PREFIXES:
        if step.startswith(prefix) and len(step) > len(prefix):
            return step[len(prefix) :]
    return step if step in required else None


def _on_bot(d: _Draft, e: Any, now: datetime, policy: Policy, fx: _Effects) -> None:
    step = clip(e.step or f"({e.outcome})", 120)
    d.steps_tried = push_unique(d.steps_tried, step, MAX_STEPS_TRIED)
    if e.outcome == "answered":
        d.bot_answered += 1
        d.turns_without_progress = 0
    elif e.outcome == "failed":
        d.bot_failed += 1
        d.failed_steps = push(d.failed_steps, step, MAX_FAILED_STEPS)
    else:
        d.bot_asked += 1
        entity = asked_entity(e, policy.intent(d.intent).required_entities)
        if entity is not None and (entity in d.entity_asks or len(d.entity_asks) < MAX_ENTITIES):
            d.entity_asks = {**d.entity_asks, entity: d.entity_asks.get(entity, 0) + 1}
            if _missing_entities(d, policy):
                _trigger(d, {"missing_required_entity"}, now, fx)


def _on_internal(d: _Draft, e: Any, now: datetime, policy: Policy, fx: _Effects) -> None:
    changed = {k: v for k, v in e.context.items() if d.internal_context.get(k) != v}
    if not changed:
        return
    d.internal_context = dict(list({**d.internal_context, **changed}.items())[:MAX_ENTITIES])
    shown = ", ".join(f"{k}={clip(str(v), 200)}" for k, v in sorted(changed.items()))
    _late_fact(d, fx, d.escalated, f"Internal context updated (agent-only): {shown}")


def _on_handoff(d: _Draft, e: Any, now: datetime, policy: Policy, fx: _Effects) -> None:
    d.human_requested = True
    _trigger(d, {"human_requested"}, now, fx)


def _on_agent(d: _Draft, e: Any, now: datetime, policy: Policy, fx: _Effects) -> None:
    known = d.entities.keys() | d.identity.keys() | d.claimed_identity.keys() | d.context.keys()
    d.agent_reasks += sum(1 for f in e.requested_fields or () if f in known)


def _on_ticket_status(d: _Draft, e: Any, now: datetime, policy: Policy, fx: _Effects) -> None:
    # The ticket id we act on comes only from our own connector results (the ticket we
    # created or found). A status event is matched to the conversation by its key; its
    # ticket_id is the helpdesk's word, kept for the record but never used to address a
    # ticket: a stale or foreign id must not redirect our updates.
    d.reported_ticket_id = e.ticket_id
    d.ticket_status = e.status
    if e.status in ("solved", "closed"):
        if d.disposition != "resolved":
            d.disposition = "resolved"
            fx.crm = True
    elif e.status == "reopened" and d.disposition != "reopened":
        d.disposition = "reopened"
        # Attempt 1 is always the original escalation, even one we never saw.
        d.attempt = max(d.attempt, 1) + 1
        d.escalated = True
        d.reasons = ()
        d.escalated_at = now
        fx.ticket = "update"
        fx.notes.append(f"Ticket reopened: escalation attempt {d.attempt}.")
        fx.crm = True


def _on_csat(d: _Draft, e: Any, now: datetime, policy: Policy, fx: _Effects) -> None:
    d.csat = e.score
    d.csat_comment = clip(e.comment, 500) if e.comment else None


def _on_closed(d: _Draft, e: Any, now: datetime, policy: Policy, fx: _Effects) -> None:
    d.closed_reason = e.reason
    if d.escalated:
        return
    disposition = _CLOSE_DISPOSITION[e.reason]
    if d.disposition != disposition:
        d.disposition = disposition
        fx.crm = True


_Handler = Callable[[_Draft, Any, datetime, Policy, _Effects], None]
_HANDLERS: dict[str, _Handler] = {
    "conversation_started": _on_started,
    "identity_captured": _on_identity,
    "customer_message": _on_customer,
    "bot_message": _on_bot,
    "internal_context": _on_internal,
    "handoff_requested": _on_handoff,
    "agent_message": _on_agent,
    "ticket_status_changed": _on_ticket_status,
    "csat_submitted": _on_csat,
    "conversation_closed": _on_closed,
}


# --- apply_result --------------------------------------------------------------------------


def apply_result(
    state: ConversationState | None, result: ConnectorResult, now: datetime, policy: Policy
) -> Decision:
    """Fold a connector's result into the state, so later commands carry the ids.

    A redelivered result (same command, status and attempt count) is a duplicate. A
    ``failed`` result is recorded, never raised.
    """
    if state is None:
        state = new_state(result.conversation_id)
    rid = f"result:{result.command_id}:{result.status}:{result.attempts}"
    if rid in state.applied_ids:
        return Decision(state, duplicate=True)
    d = _Draft.of(state)
    d.applied_ids = push(state.applied_ids, rid, MAX_APPLIED_IDS)
    d.updated_at = now
    fx = _Effects()
    if result.status == "failed":
        d.failures = push(
            d.failures, clip(f"{result.kind}: {result.error or 'failed'}", 300), MAX_FAILURES
        )
        if result.kind == "crm_note" and d.crm_note != "created":
            d.crm_note = "failed"
    elif result.kind == "ticket":
        _ticket_result(d, result, fx)
    else:
        if result.external_id:
            d.crm_note_id = result.external_id
        if result.status == "unmatched_contact":
            d.crm_note = "unmatched"
        else:
            d.crm_note = "created"
            if result.crm_contact_id:
                d.crm_contact_id = result.crm_contact_id
    return _finish(state, d, fx, rid, policy)


def _ticket_result(d: _Draft, result: ConnectorResult, fx: _Effects) -> None:
    had_link = d.ticket_url
    ext = result.external_id
    if result.status == "deduplicated" and ext and ext != d.ticket_id:
        d.merged_into = ext
        d.ticket_id = ext
        if d.disposition != "duplicate_merged":
            d.disposition = "duplicate_merged"
            fx.crm = d.crm_note != "none" or d.escalated
    elif ext:
        d.ticket_id = ext
    if result.url:
        d.ticket_url = result.url
    if d.ticket_url != had_link and d.crm_note != "none":
        fx.crm = True
