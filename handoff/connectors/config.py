"""Connector settings as frozen value objects.

Nothing here reads the environment: ``handoff.settings`` builds these from ``HANDOFF_*``
variables and passes them down, so tests construct them directly.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RetryPolicy(_Config):
    """How often and how patiently one logical call is retried.

    ``max_attempts`` counts the first try. Eight tries wait up to about a minute in all
    (0.5, 1, 2, 4, 8, 16, 30 s at most): a short vendor outage or a run of faults does not
    fail a command (at 15% faults per call, five tries left about one call in 13,000
    failed: one per 1,000-conversation chaos run). Delays grow as ``base_delay * 2**n``
    capped at ``max_delay``; with ``jitter`` the delay is drawn uniformly from ``[0, that]`` ("full
    jitter"). ``timeout`` (seconds) applies to every single HTTP request.
    """

    max_attempts: int = Field(default=8, ge=1)
    base_delay: float = Field(default=0.5, ge=0)
    max_delay: float = Field(default=30.0, ge=0)
    jitter: bool = True
    timeout: float = Field(default=10.0, gt=0)


class RateLimit(_Config):
    """Client-side token bucket: at most ``requests`` per ``per_seconds``, bursts included."""

    requests: int = Field(default=10, ge=1)
    per_seconds: float = Field(default=1.0, gt=0)


class ZendeskConfig(_Config):
    """Zendesk Support API: basic auth as ``{email}/token`` with an API token."""

    base_url: str
    email: str
    api_token: SecretStr
    bot_conversation_id_field_id: int
    # Our custom field name (e.g. "intent", "order_id") -> Zendesk custom field id.
    custom_field_ids: dict[str, int] = Field(default_factory=dict)
    dedupe_window_minutes: int = Field(default=60, ge=0)
    # Custom fields whose equal value (with same requester + intent) marks a duplicate.
    dedupe_fields: tuple[str, ...] = ("order_id", "invoice_id")
    timeout: float = Field(default=10.0, gt=0)
    # Zendesk allows 30 updates per 10 minutes per ticket; see ZendeskConnector.apply_many.
    max_updates_per_ticket_window: int = 30


class IntercomConfig(_Config):
    """Intercom REST API 2.16: bearer token, ``Intercom-Version`` header on every call."""

    base_url: str
    token: SecretStr
    admin_id: str
    # intent -> ticket_type_id (a ticket type of category "Customer").
    ticket_type_ids: dict[str, str] = Field(default_factory=dict)
    default_ticket_type_id: str
    version: str = "2.16"
    timeout: float = Field(default=10.0, gt=0)
    # e.g. "https://app.intercom.com/a/inbox/APP/inbox/conversation/{ticket_id}"; None: no url.
    ticket_url_template: str | None = None


class HubSpotConfig(_Config):
    """HubSpot CRM v3 objects and v4 associations: private-app bearer token."""

    base_url: str
    token: SecretStr
    note_conversation_property: str = "handoff_conversation_id"
    body_limit: int = Field(default=65536, ge=256)
    timeout: float = Field(default=10.0, gt=0)
    # After a create whose response was lost, poll the note search this many times
    # (``search_poll_delay`` apart) before creating again; search lags behind writes.
    search_polls: int = Field(default=3, ge=1)
    search_poll_delay: float = Field(default=1.0, ge=0)
