"""Kafka SASL/TLS settings become faust credentials and aiokafka kwargs; no secret is printed."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from handoff.app import _app_config
from handoff.exceptions import ConfigError
from handoff.kafka_security import kafka_security
from handoff.settings import Settings

PASSWORD = "s3cr3t-hunter2-pw"


def settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key, made by the openssl CLI (skipped without it)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    d = tmp_path_factory.mktemp("certs")
    cert, key = d / "client.pem", d / "client.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=handoff-test"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_plaintext_is_the_default_and_adds_nothing_to_faust(tmp_path: Path) -> None:
    sec = kafka_security(settings(tmp_path))
    assert sec.credentials is None
    assert sec.faust_config() == {}
    assert sec.aiokafka_kwargs() == {"security_protocol": "PLAINTEXT"}
    assert "broker_credentials" not in _app_config(settings(tmp_path), "x", 0)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext(tmp_path: Path, mechanism: str) -> None:
    s = settings(
        tmp_path,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism=mechanism,
        kafka_username="svc-handoff",
        kafka_password=PASSWORD,
    )
    sec = kafka_security(s)
    assert isinstance(sec.credentials, faust.SASLCredentials)
    assert sec.credentials.mechanism.value == mechanism
    assert sec.credentials.protocol.value == "SASL_PLAINTEXT"
    assert sec.aiokafka_kwargs() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "svc-handoff",
        "sasl_plain_password": PASSWORD,
    }
    # Faust's own translation to aiokafka agrees with ours.
    theirs = credentials_to_aiokafka_auth(sec.credentials)
    assert {k: v for k, v in theirs.items() if v is not None} == sec.aiokafka_kwargs()


def test_sasl_ssl_carries_a_verifying_context(tmp_path: Path, certs: tuple[Path, Path]) -> None:
    cert, _ = certs
    s = settings(
        tmp_path,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_username="u",
        kafka_password=PASSWORD,
        kafka_ca_file=cert,
    )
    sec = kafka_security(s)
    assert sec.credentials.protocol.value == "SASL_SSL"
    ctx = sec.aiokafka_kwargs()["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.get_ca_certs()[0]["subject"] == ((("commonName", "handoff-test"),),)
    assert isinstance(_app_config(s, "x", 0)["broker_credentials"], faust.SASLCredentials)


def test_ssl_with_client_certificate(tmp_path: Path, certs: tuple[Path, Path]) -> None:
    cert, key = certs
    s = settings(
        tmp_path,
        kafka_security_protocol="SSL",
        kafka_ca_file=cert,
        kafka_cert_file=cert,
        kafka_key_file=key,
    )
    sec = kafka_security(s)
    assert isinstance(sec.credentials, faust.SSLCredentials)
    assert sec.aiokafka_kwargs()["security_protocol"] == "SSL"
    assert sec.aiokafka_kwargs()["ssl_context"] is sec.credentials.context


def test_ssl_without_ca_uses_system_trust(tmp_path: Path) -> None:
    sec = kafka_security(settings(tmp_path, kafka_security_protocol="SSL"))
    assert sec.ssl_context is not None and sec.ssl_context.verify_mode == ssl.CERT_REQUIRED


async def test_kwargs_are_accepted_by_aiokafka_clients(tmp_path: Path) -> None:
    """Constructing the clients validates the kwargs; nothing connects."""
    s = settings(
        tmp_path,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_username="u",
        kafka_password=PASSWORD,
    )
    kwargs = kafka_security(s).aiokafka_kwargs()
    AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", **kwargs)
    AIOKafkaAdminClient(bootstrap_servers="127.0.0.1:1", **kwargs)


def test_secrets_never_in_repr_or_str(tmp_path: Path, certs: tuple[Path, Path]) -> None:
    s = settings(
        tmp_path,
        kafka_security_protocol="SASL_SSL",
        kafka_username="svc",
        kafka_password=PASSWORD,
        kafka_key_password="key-" + PASSWORD,
        kafka_ca_file=certs[0],
    )
    sec = kafka_security(s)
    for text in (repr(s), str(s), repr(sec), str(sec), repr(sec.credentials), str(sec.credentials)):
        assert PASSWORD not in text
    assert repr(sec) == "KafkaSecurity(protocol=SASL_SSL, mechanism=PLAIN, username='svc', tls=on)"
    assert f"{sec}" == repr(sec)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "needs HANDOFF_KAFKA_USERNAME"),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_username": "u"},
            "HANDOFF_KAFKA_PASSWORD",
        ),
        ({"kafka_username": "u"}, "is PLAINTEXT but"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ca_file": Path("/nope/ca.pem")},
            "HANDOFF_KAFKA_CA_FILE: no such file",
        ),
    ],
)
def test_unusable_settings_name_the_variable(
    tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        kafka_security(settings(tmp_path, **overrides))


def test_key_without_certificate(tmp_path: Path, certs: tuple[Path, Path]) -> None:
    s = settings(tmp_path, kafka_security_protocol="SSL", kafka_key_file=certs[1])
    with pytest.raises(ConfigError, match="HANDOFF_KAFKA_CERT_FILE is not"):
        kafka_security(s)


def test_garbage_ca_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match="TLS files cannot be loaded"):
        kafka_security(settings(tmp_path, kafka_security_protocol="SSL", kafka_ca_file=bad))


def test_processing_guarantee_reaches_faust(tmp_path: Path) -> None:
    s = settings(tmp_path, processing_guarantee="exactly_once")
    assert _app_config(s, "x", 0)["processing_guarantee"] == "exactly_once"
    assert _app_config(settings(tmp_path), "x", 0)["processing_guarantee"] == "at_least_once"


def test_settings_read_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOFF_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("HANDOFF_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("HANDOFF_KAFKA_USERNAME", "envuser")
    monkeypatch.setenv("HANDOFF_KAFKA_PASSWORD", PASSWORD)
    s = Settings.from_env(data_dir=tmp_path)
    assert kafka_security(s).aiokafka_kwargs()["sasl_plain_password"] == PASSWORD
    assert PASSWORD not in repr(s)
