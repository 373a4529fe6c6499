"""Backtest a policy on recorded conversations: the pure core, offline, no broker.

``handoff simulate FILE`` reads JSON lines of contract events (section 2) and runs the very
function the processor runs, :func:`handoff.core.decide.apply_event`, over each
conversation. Ordering, chosen so a file in any order gives one answer:

- events are grouped by ``conversation_id``; within a conversation they are applied in
  ``occurred_at`` order, ties broken by their order in the file (a stable sort). That is
  the order a chat platform produces them in, which is what the streaming path sees on the
  conversation's partition;
- a line that does not decode is reported with its line number and the field
  (:func:`handoff.streams.codec.decode_event`'s message) and counted, never fatal; a
  repeated ``event_id`` is a duplicate, ignored as the worker ignores it;
- ``now`` for each event is its own ``occurred_at`` (the worker uses its clock; only
  timestamps in the state depend on ``now``, never a decision).

What is not replayed: connector results. The streaming path folds them into the state
(ticket ids, a ``duplicate_merged`` disposition after a cross-conversation merge); no
escalation decision depends on them, so ``escalated``, reasons and every other disposition
match the worker's.

Labels: a conversation's expected outcome is a boolean ``expected_escalation`` extra field
on any of its events (the bundled sample puts it on ``conversation_closed``; the last one
wins), or a line of a ``--labels`` file, which overrides the events. Definitions used in
the summary: *escalation rate* = escalated / conversations; *deflection rate* = share of
conversations the bot closed as resolved with no escalation (disposition
``resolved_by_bot``; abandoned and timed-out chats are neither); *unneeded escalation* =
escalated but labelled not to; *missed escalation* = labelled to escalate but did not.
"""

from __future__ import annotations

import csv
import gc
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from handoff.core.decide import apply_event
from handoff.core.policy import Policy
from handoff.core.state import ConversationState
from handoff.exceptions import HandoffError, InvalidEvent
from handoff.streams.codec import decode_event
from handoff.streams.commands import REASON_CODES
from handoff.streams.events import Event

UNKNOWN_INTENT = "(none)"
MAX_PHRASINGS = 3


@dataclass(frozen=True, slots=True)
class InvalidLine:
    line: int  # 1-based
    error: str


@dataclass
class Recording:
    """Decoded events grouped by conversation, in apply order; labels; rejected lines."""

    conversations: dict[str, list[Event]] = field(default_factory=dict)
    labels: dict[str, bool] = field(default_factory=dict)
    invalid: list[InvalidLine] = field(default_factory=list)
    lines: int = 0

    @property
    def events(self) -> int:
        return sum(len(v) for v in self.conversations.values())


@dataclass(frozen=True, slots=True)
class Outcome:
    """One conversation's result under one policy.

    ``intent`` is the conversation's intent when it escalated, else its last intent.
    ``reasons`` are every reason code that fired, in contract order. ``phrasings`` are the
    customer's words in the messages that fired ``low_confidence`` (content gaps).
    """

    conversation_id: str
    intent: str
    escalated: bool
    reasons: tuple[str, ...]
    disposition: str
    expected: bool | None
    events: int
    duplicates: int
    phrasings: tuple[str, ...]
    state: ConversationState

    @property
    def deflected(self) -> bool:
        return not self.escalated and self.disposition == "resolved_by_bot"

    @property
    def verdict(self) -> str:
        """``agree``, ``unneeded``, ``missed`` or ``unlabelled``."""
        if self.expected is None:
            return "unlabelled"
        if self.expected == self.escalated:
            return "agree"
        return "unneeded" if self.escalated else "missed"


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic GC while replaying: decisions allocate many short-lived, acyclic objects,
    and the collector's passes over the recording cost more than the decisions.

    On the way out, what survived the pause (the recording, the outcomes: millions of
    objects) moves straight to the oldest generation (``gc.freeze`` then ``gc.unfreeze``
    splice lists, no pass). Merely re-enabling would run a young-generation pass over all
    of it at the next allocation, about as long as the replay itself. Cyclic garbage made
    meanwhile is still found, by the next full collection. Skipped when something else
    has frozen objects (``unfreeze`` would thaw them too).
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        if was:
            gc.enable()


# --- reading -------------------------------------------------------------------------------


def read_events(lines: Iterable[bytes]) -> Recording:
    """Decode JSON lines (1-based numbering, blank lines skipped) into a Recording."""
    with gc_paused():
        return _read(lines)


def _read(lines: Iterable[bytes]) -> Recording:
    rec = Recording()
    keyed: dict[str, list[tuple[datetime, int, Event]]] = {}
    labels = rec.labels
    n = 0
    for n, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            event = decode_event(line)
        except InvalidEvent as exc:
            rec.invalid.append(InvalidLine(n, str(exc)))
            continue
        cid = event.conversation_id
        items = keyed.get(cid)
        if items is None:
            items = keyed[cid] = []
        items.append((event.occurred_at, n, event))
        extra = event.__pydantic_extra__  # model_extra, minus a property call per event
        if extra:
            label = extra.get("expected_escalation")
            if isinstance(label, bool):
                labels[cid] = label
    rec.lines = n
    for cid, items in keyed.items():
        # Plain tuple order is (occurred_at, line): line numbers are unique, so events
        # themselves are never compared.
        items.sort()
        rec.conversations[cid] = [e for _, _, e in items]
    return rec


def load_events(path: str | Path) -> Recording:
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return read_events(fh)
    except OSError as exc:
        raise HandoffError(f"{p}: cannot read the events file: {exc}") from None


_TRUE = {"true", "1", "yes", "y", "escalate"}
_FALSE = {"false", "0", "no", "n", "deflect"}


def load_labels(path: str | Path) -> tuple[dict[str, bool], list[InvalidLine]]:
    """Labels from CSV (header ``conversation_id,expected_escalation``) or JSON lines.

    A ``.csv`` file is CSV; anything else is JSON lines of objects with those two keys.
    Values: true/false (also 1/0, yes/no). Bad lines are reported, not fatal.
    """
    p = Path(path)
    labels: dict[str, bool] = {}
    bad: list[InvalidLine] = []
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HandoffError(f"{p}: cannot read the labels file: {exc}") from None
    if p.suffix.lower() == ".csv":
        rows: Iterator[tuple[int, object]] = (
            (i + 2, row) for i, row in enumerate(csv.DictReader(text.splitlines()))
        )
    else:
        rows = ((i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip())
    for n, row in rows:
        if isinstance(row, str):
            try:
                row = orjson.loads(row)
            except orjson.JSONDecodeError as exc:
                bad.append(InvalidLine(n, f"field 'value' is not valid JSON: {exc}"))
                continue
        if not isinstance(row, dict) or not row.get("conversation_id"):
            bad.append(InvalidLine(n, "field 'conversation_id' is required"))
            continue
        value = row.get("expected_escalation")
        if isinstance(value, str):
            value = True if value.strip().lower() in _TRUE else value
            value = False if isinstance(value, str) and value.strip().lower() in _FALSE else value
        if not isinstance(value, bool):
            bad.append(
                InvalidLine(n, f"field 'expected_escalation' must be true or false, got {value!r}")
            )
            continue
        labels[str(row["conversation_id"])] = value
    return labels, bad


# --- running -------------------------------------------------------------------------------


def simulate_conversation(
    cid: str, events: list[Event], policy: Policy, expected: bool | None = None
) -> Outcome:
    """Apply the policy to one conversation's events, in order."""
    state: ConversationState | None = None
    fired: set[str] = set()
    phrasings: list[str] = []
    intent_at_escalation: str | None = None
    duplicates = 0
    escalated = False
    for event in events:
        d = apply_event(state, event, event.occurred_at, policy)
        state = d.state
        if d.duplicate:
            duplicates += 1
            continue
        if d.reasons:
            fired.update(d.reasons)
            if (
                "low_confidence" in d.reasons
                and event.type == "customer_message"
                and len(phrasings) < MAX_PHRASINGS
            ):
                phrasings.append(event.text)
        if d.escalated and not escalated:
            escalated = True
            intent_at_escalation = state.intent
    assert state is not None
    return Outcome(
        conversation_id=cid,
        intent=intent_at_escalation or state.intent or UNKNOWN_INTENT,
        escalated=escalated,
        reasons=tuple(r for r in REASON_CODES if r in fired),
        disposition=state.disposition or "open",
        expected=expected,
        events=len(events),
        duplicates=duplicates,
        phrasings=tuple(phrasings),
        state=state,
    )


def simulate(
    rec: Recording, policy: Policy, labels: dict[str, bool] | None = None
) -> list[Outcome]:
    """Every conversation's outcome, in first-seen order. ``labels`` override the file's."""
    merged = {**rec.labels, **(labels or {})}
    with gc_paused():
        return [
            simulate_conversation(cid, events, policy, merged.get(cid))
            for cid, events in rec.conversations.items()
        ]


# --- summarizing ---------------------------------------------------------------------------


class EscalationRates:
    """Escalation and deflection rates of anything that counts conversations (0 when none)."""

    __slots__ = ()
    conversations: int
    escalated: int
    deflected: int

    @property
    def escalation_rate(self) -> float:
        return self.escalated / self.conversations if self.conversations else 0.0

    @property
    def deflection_rate(self) -> float:
        return self.deflected / self.conversations if self.conversations else 0.0


@dataclass
class IntentRow(EscalationRates):
    intent: str
    conversations: int = 0
    escalated: int = 0
    deflected: int = 0
    labelled: int = 0
    agree: int = 0
    unneeded: int = 0
    missed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, o: Outcome) -> None:
        self.conversations += 1
        self.escalated += o.escalated
        self.deflected += o.deflected
        self.reasons.update(o.reasons)
        verdict = o.verdict
        if verdict != "unlabelled":
            self.labelled += 1
            setattr(self, verdict, getattr(self, verdict) + 1)

    @property
    def agreement(self) -> float | None:
        return self.agree / self.labelled if self.labelled else None

    def as_dict(self) -> dict[str, object]:
        return {
            "intent": self.intent,
            "conversations": self.conversations,
            "escalated": self.escalated,
            "escalation_rate": round(self.escalation_rate, 4),
            "deflected": self.deflected,
            "deflection_rate": round(self.deflection_rate, 4),
            "labelled": self.labelled,
            "agree": self.agree,
            "agreement": None if self.agreement is None else round(self.agreement, 4),
            "unneeded_escalations": self.unneeded,
            "missed_escalations": self.missed,
            "reasons": {r: self.reasons[r] for r in REASON_CODES if self.reasons[r]},
        }


TOTAL = "(all)"


def summarize(outcomes: Iterable[Outcome]) -> list[IntentRow]:
    """One row per intent (sorted by conversations, then name), then the ``(all)`` row."""
    rows: dict[str, IntentRow] = {}
    total = IntentRow(TOTAL)
    for o in outcomes:
        rows.setdefault(o.intent, IntentRow(o.intent)).add(o)
        total.add(o)
    ordered = sorted(rows.values(), key=lambda r: (-r.conversations, r.intent))
    return [*ordered, total]


@dataclass(frozen=True, slots=True)
class Change:
    """A conversation decided differently by two policies."""

    conversation_id: str
    intent: str
    expected: bool | None
    before: Outcome
    after: Outcome

    @property
    def kind(self) -> str:
        if self.before.escalated != self.after.escalated:
            return "now escalates" if self.after.escalated else "no longer escalates"
        if self.before.reasons != self.after.reasons:
            return "reasons change"
        return "disposition changes"

    @property
    def effect(self) -> str:
        """``fixes`` / ``breaks`` a labelled conversation, else empty."""
        if self.expected is None or self.before.escalated == self.after.escalated:
            return ""
        return "fixes" if self.after.escalated == self.expected else "breaks"


def compare(before: list[Outcome], after: list[Outcome]) -> list[Change]:
    """Conversations whose escalation, reasons or disposition differ, in file order."""
    by_id = {o.conversation_id: o for o in after}
    out: list[Change] = []
    for b in before:
        a = by_id.get(b.conversation_id)
        if a is None:
            continue
        if (b.escalated, b.reasons, b.disposition) != (a.escalated, a.reasons, a.disposition):
            out.append(Change(b.conversation_id, a.intent, b.expected, b, a))
    return out
