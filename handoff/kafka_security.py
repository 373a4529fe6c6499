"""Kafka security from settings: SASL (PLAIN, SCRAM-SHA-256/512) and TLS, in both client forms.

``kafka_security(settings)`` is the one place that reads the ``HANDOFF_KAFKA_*`` settings.
It returns a :class:`KafkaSecurity` that carries

- ``credentials``: what Faust takes as ``broker_credentials`` (``faust.SASLCredentials`` or
  ``faust.SSLCredentials``; ``None`` for PLAINTEXT), and
- ``aiokafka_kwargs()``: the keyword arguments for plain aiokafka clients (the replay
  producer, admin clients, the Rasa bridge).

The password lives only inside those two; ``repr``/``str`` of the object name the protocol,
mechanism and user, never the password (faust's ``SASLCredentials.__repr__`` also omits it).
Files are checked when the object is built, so a worker with a wrong path stops at start
with the setting's name instead of failing on its first connection.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust

from handoff.exceptions import ConfigError
from handoff.settings import Settings


@dataclass(frozen=True, repr=False)
class KafkaSecurity:
    """Security for every Kafka client of one process; safe to print."""

    protocol: str
    mechanism: str | None
    username: str | None
    credentials: Any | None  # faust.SASLCredentials | faust.SSLCredentials | None
    ssl_context: ssl.SSLContext | None
    _password: str | None = field(default=None, compare=False)

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer/Consumer/AdminClient (contains the password)."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.ssl_context is not None:
            kwargs["ssl_context"] = self.ssl_context
        if self.mechanism is not None:
            kwargs["sasl_mechanism"] = self.mechanism
            kwargs["sasl_plain_username"] = self.username
            kwargs["sasl_plain_password"] = self._password
        return kwargs

    def faust_config(self) -> dict[str, Any]:
        """The ``faust.App`` keyword for this security (empty for PLAINTEXT)."""
        return {"broker_credentials": self.credentials} if self.credentials is not None else {}

    def __repr__(self) -> str:
        parts = [f"protocol={self.protocol}"]
        if self.mechanism is not None:
            parts += [f"mechanism={self.mechanism}", f"username={self.username!r}"]
        if self.ssl_context is not None:
            parts.append("tls=on")
        return f"KafkaSecurity({', '.join(parts)})"

    __str__ = __repr__


def _readable(name: str, path: Path | None) -> str | None:
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError(f"HANDOFF_{name.upper()}: no such file: {path}")
    return str(path)


def ssl_context_from(settings: Settings) -> ssl.SSLContext:
    """A client TLS context: verifies the broker (given CA or system CAs), optional mTLS."""
    cafile = _readable("kafka_ca_file", settings.kafka_ca_file)
    certfile = _readable("kafka_cert_file", settings.kafka_cert_file)
    keyfile = _readable("kafka_key_file", settings.kafka_key_file)
    if keyfile and not certfile:
        raise ConfigError("HANDOFF_KAFKA_KEY_FILE is set but HANDOFF_KAFKA_CERT_FILE is not")
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
        if certfile:
            key_password = settings.kafka_key_password.get_secret_value() or None
            context.load_cert_chain(certfile, keyfile, password=key_password)
    except (ssl.SSLError, OSError) as exc:
        # The exception text names the file and the OpenSSL reason, never the key password.
        raise ConfigError(f"HANDOFF_KAFKA_* TLS files cannot be loaded: {exc}") from None
    return context


def kafka_security(settings: Settings) -> KafkaSecurity:
    """Both forms of the configured Kafka security; raises ConfigError on unusable settings."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        if settings.kafka_cert_file or settings.kafka_ca_file or settings.kafka_username:
            raise ConfigError(
                "HANDOFF_KAFKA_SECURITY_PROTOCOL is PLAINTEXT but TLS files or a SASL user are "
                "set; choose SSL, SASL_PLAINTEXT or SASL_SSL"
            )
        return KafkaSecurity("PLAINTEXT", None, None, None, None)
    context = ssl_context_from(settings) if protocol in ("SSL", "SASL_SSL") else None
    if protocol == "SSL":
        return KafkaSecurity("SSL", None, None, faust.SSLCredentials(context), context)
    username = settings.kafka_username
    password = settings.kafka_password.get_secret_value()
    if not username or not password:
        raise ConfigError(
            f"HANDOFF_KAFKA_SECURITY_PROTOCOL={protocol} needs HANDOFF_KAFKA_USERNAME and "
            "HANDOFF_KAFKA_PASSWORD"
        )
    mechanism = settings.kafka_sasl_mechanism
    credentials = faust.SASLCredentials(
        username=username, password=password, ssl_context=context, mechanism=mechanism
    )
    return KafkaSecurity(protocol, mechanism, username, credentials, context, password)
