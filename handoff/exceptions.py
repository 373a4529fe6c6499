"""All errors handoff raises, under one root.

HandoffError
├── ConfigError            settings or environment that cannot work
│   └── PolicyError        a policy file that does not validate (file, line, field)
├── InvalidEvent           an input record that cannot be processed (names the field)
├── BrokerError            the embedded broker would not start or answer
└── ConnectorError         a vendor call that failed
    ├── RetryableError     5xx, 429, timeouts, connection errors: try again
    └── PermanentError     4xx other than 429: retrying cannot help
"""

from __future__ import annotations


class HandoffError(Exception):
    """Root of every error handoff raises on purpose."""


class ConfigError(HandoffError):
    """Settings that cannot work."""


class PolicyError(ConfigError):
    """A policy file that does not validate; the message names the file, line and field."""


class InvalidEvent(HandoffError):
    """An input record that cannot be processed; the message names the field and problem."""


class BrokerError(HandoffError):
    """The embedded broker did not start, or did not accept connections in time."""


class ConnectorError(HandoffError):
    """A helpdesk or CRM call that failed."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryableError(ConnectorError):
    """A failure that may pass: 5xx, 429, timeouts, connection resets."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class PermanentError(ConnectorError):
    """A failure that retrying cannot fix (validation, auth, not found)."""
