"""The escalation policy (contract section 3): a frozen model loaded from TOML.

Layout of a policy file::

    no_progress_turns = 3          # globals at the top level
    sentiment_threshold = -0.5
    [tiers.low]                    # tier defaults: the confidence threshold
    threshold = 0.6
    [tiers.high]
    threshold = 0.8
    [default]                      # used for any intent the policy does not name
    tier = "low"
    [intents.refund]               # one table per intent
    tier = "high"
    always_escalate = true
    required_entities = ["order_id"]

An intent the NLU reports but the policy does not name is handled by ``[default]``
(tier ``low`` unless the file says otherwise). A file that does not validate raises
:class:`~handoff.exceptions.PolicyError` whose message reads
``FILE:LINE: field 'intents.refund.threshold': REASON``.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from handoff.exceptions import PolicyError

Tier = Literal["low", "high"]
TicketType = Literal["problem", "incident", "question", "task"]
Priority = Literal["urgent", "high", "normal", "low"]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]

INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_TIERS: tuple[Tier, ...] = ("low", "high")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TierPolicy(_Frozen):
    threshold: Unit


class IntentPolicy(_Frozen):
    """How one intent is handled. ``threshold`` overrides the tier's when set.

    ``smalltalk`` marks intents such as ``greeting`` and ``thanks``: they never replace the
    conversation's current intent and never count as the customer's substantive request.
    """

    tier: Tier = "low"
    threshold: Unit | None = None
    required_entities: tuple[str, ...] = ()
    ticket_type: TicketType = "question"
    priority: Priority = "normal"
    always_escalate: bool = False
    smalltalk: bool = False

    @field_validator("required_entities")
    @classmethod
    def _entity_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not INTENT_NAME.match(name):
                raise ValueError(f"entity name {name!r} must match {INTENT_NAME.pattern}")
        if len(set(value)) != len(value):
            raise ValueError("entity names must be unique")
        return value


def _default_tiers() -> dict[Tier, TierPolicy]:
    return {"low": TierPolicy(threshold=0.6), "high": TierPolicy(threshold=0.8)}


class Policy(_Frozen):
    """The whole policy. Look intents up with :meth:`intent` and :meth:`threshold`."""

    version: Literal[1] = 1
    no_progress_turns: Annotated[int, Field(ge=1, le=100)] = 3
    sentiment_threshold: Annotated[float, Field(ge=-1.0, le=1.0)] = -0.5
    sentiment_streak: Annotated[int, Field(ge=1, le=100)] = 2
    max_entity_asks: Annotated[int, Field(ge=1, le=100)] = 2
    dedupe_window_minutes: Annotated[int, Field(ge=0, le=10_080)] = 60
    crm_body_limit: Annotated[int, Field(ge=1024, le=1_000_000)] = 65_536
    tiers: dict[Tier, TierPolicy] = Field(default_factory=_default_tiers)
    default: IntentPolicy = IntentPolicy()
    intents: dict[str, IntentPolicy] = Field(default_factory=dict)

    @field_validator("tiers")
    @classmethod
    def _both_tiers(cls, value: dict[Tier, TierPolicy]) -> dict[Tier, TierPolicy]:
        missing = [t for t in _TIERS if t not in value]
        if missing:
            raise ValueError(f"tier {missing[0]!r} is missing; both 'low' and 'high' are needed")
        return value

    def intent(self, name: str | None) -> IntentPolicy:
        """The intent's policy, or ``default`` for an unnamed or unknown intent."""
        if name is None:
            return self.default
        return self.intents.get(name, self.default)

    def threshold(self, name: str | None) -> float:
        """The confidence threshold: the intent's own, else its tier's."""
        ip = self.intent(name)
        if ip.threshold is not None:
            return ip.threshold
        return self.tiers[ip.tier].threshold


# --- loading -------------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+))*)\s*="""
)
_PART = re.compile(r"""\s*("[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)\s*(?:\.|$)""")


def _split_dotted(text: str) -> tuple[str, ...]:
    return tuple(p.strip("\"'") for p in _PART.findall(text))


def locate(text: str, path: tuple[str, ...]) -> int | None:
    """The 1-based line that defines ``path`` (or its nearest defined parent) in TOML text.

    A line-oriented scan is enough: it tracks ``[table]`` headers and ``key =`` lines
    (dotted keys included). Multi-line values only ever start on a key line, so they do
    not confuse it. An exact match wins, then the first line defining something under
    ``path`` (``[tiers.low]`` for ``tiers``), then the deepest parent. None when nothing
    of ``path`` appears in the file.
    """
    best: tuple[int, int] | None = None  # (matched length, line)
    child: int | None = None  # first line defining something under ``path``
    table: tuple[str, ...] = ()
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = _HEADER.match(line)
        if m:
            table = _split_dotted(m.group(1))
            full = table
        else:
            k = _KEY.match(line)
            if not k:
                continue
            full = table + _split_dotted(k.group(1))
        n = len(full)
        if n <= len(path) and full == path[:n] and (best is None or n > best[0]):
            best = (n, lineno)
        elif child is None and n > len(path) and full[: len(path)] == path:
            child = lineno
    if best is not None and (best[0] == len(path) or child is None):
        return best[1]
    return child if child is not None else (best[1] if best else None)


def _fail(source: str, text: str, path: tuple[str, ...], reason: str) -> PolicyError:
    line = locate(text, path)
    where = f"{source}:{line}" if line is not None else source
    field = ".".join(path) or "(root)"
    return PolicyError(f"{where}: field '{field}': {reason}")


def parse_policy(text: str, source: str = "<string>") -> Policy:
    """Validate TOML text into a Policy; raise PolicyError naming file, line and field."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        where = f"{source}:{m.group(1)}" if m else source
        raise PolicyError(f"{where}: invalid TOML: {exc}") from None
    intents = data.get("intents")
    if isinstance(intents, dict):
        for name in intents:
            if not INTENT_NAME.match(name):
                raise _fail(
                    source,
                    text,
                    ("intents", name),
                    f"intent name {name!r} must be lower case letters, digits and '_' "
                    "(it becomes a tag)",
                )
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = tuple(str(p) for p in err["loc"] if p != "[key]")
        # A tuple element's index is not a TOML key: point at the list's line.
        keys = tuple(p for p in path if not p.isdigit())
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown field"
        elif err["type"] == "missing":
            reason = "is required"
        elif err["type"] == "value_error":
            reason = reason.removeprefix("Value error, ")
        elif "input" in err:
            reason = f"{reason} (got {err['input']!r})"
        raise _fail(source, text, keys, reason) from None


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; every problem is a PolicyError naming the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{p}: cannot read the policy file: {exc}") from None
    return parse_policy(text, source=str(p))


def default_policy_text() -> str:
    """The shipped policy (``handoff/data/policy.toml``) as text."""
    return resources.files("handoff").joinpath("data/policy.toml").read_text(encoding="utf-8")


@cache
def default_policy() -> Policy:
    """The shipped policy, parsed once."""
    return parse_policy(default_policy_text(), source="handoff/data/policy.toml")
