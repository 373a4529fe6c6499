"""Threshold sweeps: coverage (deflection) against safety (missed escalations).

``--sweep NAME.threshold=LOW:HIGH:STEP`` re-runs the backtest once per value, with only
that threshold changed. ``NAME`` is an intent (``order_status``; an intent the policy does
not name gets a copy of ``[default]`` with the threshold set), ``default``, or a tier
(``tiers.low``). An intent sweep scores the conversations of that intent; a tier or
default sweep scores every conversation.

Raising a confidence threshold can only add ``low_confidence`` triggers, and an
escalation is any trigger, so the escalated set only grows along the sweep: deflection
never rises and missed escalations never rise as the threshold goes up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from handoff.core.policy import Policy
from handoff.exceptions import HandoffError
from handoff.simulate import (
    EscalationRates,
    Outcome,
    Recording,
    gc_paused,
    simulate_conversation,
)
from handoff.svgplot import Series, line_chart

_SPEC = re.compile(
    r"^\s*(?P<name>tiers\.(?:low|high)|[a-z][a-z0-9_]{0,63})\.threshold\s*=\s*"
    r"(?P<low>[0-9.]+)\s*:\s*(?P<high>[0-9.]+)\s*:\s*(?P<step>[0-9.]+)\s*$"
)
MAX_POINTS = 201


@dataclass(frozen=True, slots=True)
class SweepSpec:
    name: str  # intent name, "default", or "tiers.low" / "tiers.high"
    values: tuple[float, ...]

    @property
    def is_intent(self) -> bool:
        return self.name != "default" and not self.name.startswith("tiers.")

    def current(self, policy: Policy) -> float:
        """The threshold the policy applies today."""
        if self.name.startswith("tiers."):
            return policy.tiers[self.name.split(".")[1]].threshold  # type: ignore[index]
        if self.name == "default":
            ip = policy.default
            return ip.threshold if ip.threshold is not None else policy.tiers[ip.tier].threshold
        return policy.threshold(self.name)


def parse_spec(text: str) -> SweepSpec:
    """``refund.threshold=0.3:0.9:0.05`` -> SweepSpec; a HandoffError says what is wrong."""
    m = _SPEC.match(text)
    if not m:
        raise HandoffError(
            f"--sweep {text!r}: expected NAME.threshold=LOW:HIGH:STEP, "
            "e.g. order_status.threshold=0.3:0.9:0.05 (NAME: an intent, default, tiers.low)"
        )
    try:
        low, high, step = (float(m.group(k)) for k in ("low", "high", "step"))
    except ValueError:
        raise HandoffError(f"--sweep {text!r}: LOW, HIGH and STEP must be numbers") from None
    if not (0.0 <= low <= high <= 1.0) or step <= 0:
        raise HandoffError(f"--sweep {text!r}: need 0 <= LOW <= HIGH <= 1 and STEP > 0")
    count = int((high - low) / step + 1e-9) + 1
    if count > MAX_POINTS:
        raise HandoffError(f"--sweep {text!r}: {count} points; at most {MAX_POINTS}")
    values = tuple(round(low + i * step, 6) for i in range(count))
    return SweepSpec(m.group("name"), values)


def with_threshold(policy: Policy, name: str, value: float) -> Policy:
    """A validated copy of ``policy`` with one threshold replaced."""
    data: dict[str, Any] = policy.model_dump()
    if name.startswith("tiers."):
        data["tiers"][name.split(".")[1]]["threshold"] = value
    elif name == "default":
        data["default"]["threshold"] = value
    else:
        entry = data["intents"].get(name) or dict(data["default"])
        data["intents"][name] = {**entry, "threshold": value}
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise HandoffError(f"{name}.threshold={value}: {exc.errors()[0]['msg']}") from None


@dataclass(frozen=True, slots=True)
class SweepPoint(EscalationRates):
    threshold: float
    conversations: int
    escalated: int
    deflected: int
    labelled: int
    needed: int  # labelled expected_escalation=true
    missed: int
    unneeded: int

    @property
    def missed_rate(self) -> float:
        """Missed escalations as a share of the labelled conversations that needed one."""
        return self.missed / self.needed if self.needed else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "conversations": self.conversations,
            "escalated": self.escalated,
            "escalation_rate": round(self.escalation_rate, 4),
            "deflected": self.deflected,
            "deflection_rate": round(self.deflection_rate, 4),
            "labelled": self.labelled,
            "needed": self.needed,
            "missed_escalations": self.missed,
            "missed_rate": round(self.missed_rate, 4),
            "unneeded_escalations": self.unneeded,
        }


def _mentions(events: list[Any], intent: str) -> bool:
    return any(e.type == "customer_message" and e.nlu.intent == intent for e in events)


def point(threshold: float, outcomes: list[Outcome]) -> SweepPoint:
    labelled = [o for o in outcomes if o.expected is not None]
    return SweepPoint(
        threshold=threshold,
        conversations=len(outcomes),
        escalated=sum(o.escalated for o in outcomes),
        deflected=sum(o.deflected for o in outcomes),
        labelled=len(labelled),
        needed=sum(bool(o.expected) for o in labelled),
        missed=sum(o.verdict == "missed" for o in labelled),
        unneeded=sum(o.verdict == "unneeded" for o in labelled),
    )


def run_sweep(
    rec: Recording, policy: Policy, spec: SweepSpec, labels: dict[str, bool] | None = None
) -> list[SweepPoint]:
    """One point per value. An intent sweep only replays conversations that mention it
    (no other conversation's decisions can change)."""
    merged = {**rec.labels, **(labels or {})}
    convs = rec.conversations
    if spec.is_intent:
        convs = {cid: evs for cid, evs in convs.items() if _mentions(evs, spec.name)}
    points = []
    with gc_paused():
        for value in spec.values:
            p = with_threshold(policy, spec.name, value)
            outs = [simulate_conversation(c, e, p, merged.get(c)) for c, e in convs.items()]
            if spec.is_intent:
                outs = [o for o in outs if o.intent == spec.name]
            points.append(point(value, outs))
    return points


def plot(points: list[SweepPoint], spec: SweepSpec, current: float | None = None) -> str:
    """The sweep as an SVG chart: deflection, escalation and missed-escalation rates."""
    xs = [p.threshold for p in points]
    scope = f"intent {spec.name}" if spec.is_intent else f"all intents ({spec.name})"
    return line_chart(
        xs,
        [
            Series("deflection (coverage)", tuple(p.deflection_rate for p in points)),
            Series("escalation rate", tuple(p.escalation_rate for p in points)),
            Series("missed escalations", tuple(p.missed_rate for p in points)),
        ],
        title=f"Threshold sweep: {scope}",
        x_label=f"{spec.name}.threshold",
        mark_x=current,
        mark_label="policy",
    )
