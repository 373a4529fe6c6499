"""Fault injection: which failure, if any, a vendor request meets.

Draws come from one ``random.Random`` seeded from the config, in a fixed order per
request (latency, then the pre-handler fault, then the lost response), so the same
seed and the same request sequence give the same faults.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    ERROR = "error"
    RATE_LIMIT = "rate_limit"
    LOST_RESPONSE = "lost_response"
    LATENCY = "latency"


@dataclass(frozen=True)
class FaultConfig:
    """What goes wrong, and how often. Rates are shares of vendor requests, 0..1.

    ``error_rate``: answer a 5xx before the handler runs (nothing committed).
    ``rate_limit_rate``: answer 429 with ``Retry-After: retry_after`` (nothing committed).
    ``lost_response_rate``: for successful writes (POST/PUT/PATCH/DELETE other than
    searches), run the handler (the write commits), then abort the connection without
    sending the response: the client cannot tell whether it worked. Reads never lose
    responses, so a client can always look before it retries.
    ``latency_ms``: (low, high) added before handling; low == high for a fixed delay.
    ``search_lag_s``: objects younger than this are invisible to search endpoints.
    """

    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: int = 1
    latency_ms: tuple[float, float] = (0.0, 0.0)
    search_lag_s: float = 0.0
    lost_response_rate: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("error_rate", "rate_limit_rate", "lost_response_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.error_rate + self.rate_limit_rate > 1.0:
            raise ValueError("error_rate + rate_limit_rate must not exceed 1")
        low, high = self.latency_ms
        if low < 0 or high < low:
            raise ValueError(f"latency_ms must be 0 <= low <= high, got {self.latency_ms}")
        if self.retry_after < 0 or self.search_lag_s < 0:
            raise ValueError("retry_after and search_lag_s must not be negative")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["latency_ms"] = list(self.latency_ms)
        return data

    def updated(self, changes: dict[str, Any]) -> FaultConfig:
        """A copy with ``changes`` applied (the JSON admin endpoint's partial update)."""
        unknown = set(changes) - set(self.to_json())
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        fields = dict(changes)
        if "latency_ms" in fields:
            fields["latency_ms"] = parse_latency(fields["latency_ms"])
        for name in ("error_rate", "rate_limit_rate", "lost_response_rate", "search_lag_s"):
            if name in fields:
                fields[name] = float(fields[name])
        if "retry_after" in fields:
            fields["retry_after"] = int(fields["retry_after"])
        if fields.get("seed") is not None:
            fields["seed"] = int(fields["seed"])
        return replace(self, **fields)


def parse_latency(value: Any) -> tuple[float, float]:
    """Accept ``50``, ``"50"``, ``"10-100"``, ``[10, 100]``."""
    if isinstance(value, int | float):
        return (float(value), float(value))
    if isinstance(value, str):
        low, _, high = value.partition("-")
        return (float(low), float(high or low))
    if isinstance(value, list | tuple) and len(value) == 2:
        return (float(value[0]), float(value[1]))
    raise ValueError(f"latency_ms must be a number, 'low-high' or [low, high], got {value!r}")


@dataclass(frozen=True)
class Decision:
    """The faults chosen for one request."""

    delay_s: float = 0.0
    before: FaultKind | None = None
    lose_response: bool = False


class FaultInjector:
    """Holds the current config and the seeded random source; ``decide()`` per request."""

    def __init__(self, config: FaultConfig | None = None, rng: random.Random | None = None):
        self.config = config or FaultConfig()
        self.rng = rng or random.Random(self.config.seed)

    def configure(self, config: FaultConfig, *, reseed: bool = False) -> None:
        """Swap the config; ``reseed`` restarts the random sequence from ``config.seed``."""
        self.config = config
        if reseed:
            self.rng.seed(config.seed)

    def decide(self) -> Decision:
        cfg = self.config
        low, high = cfg.latency_ms
        delay_ms = low if low == high else self.rng.uniform(low, high)
        roll = self.rng.random()
        lost_roll = self.rng.random()
        before: FaultKind | None = None
        if roll < cfg.error_rate:
            before = FaultKind.ERROR
        elif roll < cfg.error_rate + cfg.rate_limit_rate:
            before = FaultKind.RATE_LIMIT
        return Decision(
            delay_s=delay_ms / 1000.0,
            before=before,
            lose_response=lost_roll < cfg.lost_response_rate,
        )
