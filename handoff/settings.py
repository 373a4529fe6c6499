"""One frozen Settings object, read once at start from ``HANDOFF_*`` variables and flags.

Nothing reads the environment behind the caller's back: ``Settings.from_env(**overrides)``
is called by the CLI, and the result is passed down. Tokens are ``SecretStr`` so that a
repr, a log line or a traceback never shows them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from handoff.connectors.config import RetryPolicy
from handoff.streams.topics import TopicNames


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HANDOFF_", frozen=True, extra="ignore")

    # Kafka
    broker: str = Field("kafka://127.0.0.1:9092", description="Faust broker URL(s)")
    app_id: str = "handoff"
    topic_prefix: str = ""
    partitions: int = Field(4, ge=1)
    replication_factor: int = Field(1, ge=1)
    broker_session_timeout: float = Field(
        6.0, description="seconds; the embedded Tansu broker holds JoinGroup for half of it"
    )
    # 8 MiB (Faust's default is 1): recovery of 100,000 conversations read the changelogs in
    # 10.1 s instead of 13.6 s (benchmarks/RESULTS.md); fetches of a live stream are small.
    max_partition_fetch_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        description="bytes fetched per partition per request (Faust consumer_max_fetch_size)",
    )
    commit_interval: float = Field(
        2.8, gt=0, description="seconds between offset commits (Faust broker_commit_interval)"
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once", description="Faust processing_guarantee; exactly_once needs real Kafka"
    )

    # Kafka security (see handoff.kafka_security)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_username: str = ""
    kafka_password: SecretStr = SecretStr("")
    kafka_ca_file: Path | None = Field(None, description="PEM CA bundle; default: system CAs")
    kafka_cert_file: Path | None = Field(None, description="PEM client certificate (mTLS)")
    kafka_key_file: Path | None = Field(None, description="PEM client key (mTLS)")
    kafka_key_password: SecretStr = SecretStr("")

    # State
    store: str = Field("rocksdb://", description="Faust table store: rocksdb:// or memory://")
    data_dir: Path = Path("handoff-data")

    # Processing
    policy_path: Path | None = Field(None, description="TOML policy; default: the shipped one")
    max_event_bytes: int = Field(1024 * 1024, ge=1024)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Batch mode by default: 1.5-2x the per-event throughput, half the changelog records
    # (faster recovery), lower latency under load, and as safe (failed sends are retried
    # in place, handoff/agents/retry.py). A partial batch waits at most batch_within.
    batch_size: int = Field(
        100,
        ge=1,
        description="inputs per processor batch (handoff.agents.batch); 1: one at a time",
    )
    batch_within: float = Field(
        0.005, gt=0, description="seconds a partial batch waits for more inputs"
    )
    sla_target_seconds: float = Field(
        900.0, gt=0, description="escalation to first agent reply; the SLA share is within it"
    )

    # Web views
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=0, le=65535)
    web_enabled: bool = True
    web_token: SecretStr = Field(
        SecretStr(""), description="bearer token for all views but /health; unset: loopback only"
    )

    # Connectors
    helpdesk: Literal["zendesk", "intercom", "sandbox", "none"] = "sandbox"
    crm: Literal["hubspot", "sandbox", "none"] = "sandbox"
    sandbox_url: str = "http://127.0.0.1:8765"
    zendesk_url: str = ""
    zendesk_email: str = ""
    zendesk_token: SecretStr = SecretStr("")
    zendesk_conversation_field_id: int = 360000000001
    intercom_url: str = "https://api.intercom.io"
    intercom_token: SecretStr = SecretStr("")
    intercom_admin_id: str = ""
    intercom_ticket_type_id: str = ""
    hubspot_url: str = "https://api.hubapi.com"
    hubspot_token: SecretStr = SecretStr("")
    dedupe_window_minutes: int = Field(60, ge=0)
    # Commands in flight per connector agent: different conversations run concurrently,
    # one conversation's commands one after another (handoff.agents.lanes); 1: serial.
    connector_concurrency: int = Field(
        16, ge=1, description="conversations whose commands run at once, per connector agent"
    )
    connector_max_attempts: int = Field(
        RetryPolicy().max_attempts,
        ge=1,
        description="tries per vendor call (the first included) before a command fails",
    )
    connector_batch: int = Field(
        64, ge=1, description="commands taken from the stream per connector batch"
    )

    # Adapters (handoff ingest): webhook signing secrets
    zendesk_webhook_secret: SecretStr = SecretStr("")
    intercom_client_secret: SecretStr = SecretStr("")

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Environment first, then explicit overrides (flags); ``None`` overrides are ignored."""
        return cls(**{k: v for k, v in overrides.items() if v is not None})

    @property
    def topics(self) -> TopicNames:
        return TopicNames.with_prefix(self.topic_prefix)

    @property
    def bootstrap(self) -> str:
        """The first broker as host:port (for plain aiokafka clients)."""
        first = self.broker.split(";")[0].split(",")[0]
        return first.split("://", 1)[-1]
