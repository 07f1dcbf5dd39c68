"""Kafka TLS/SASL settings become the options each client library takes; anything partial
or plaintext across a network is refused before a client is built."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest

from overgang.config import Settings
from overgang.kafka.security import (
    KafkaSecurityError,
    aiokafka_security,
    faust_app_options,
    faust_broker_url,
    faust_credentials,
    kafka_python_security,
)

from . import test_grpc_tls

pki = test_grpc_tls.pki  # a CA and certificates (fixture)
REMOTE = "kafka-1.internal:9093,kafka-2.internal:9093"


def _sasl_ssl(pki: dict[str, Path], tmp_path: Path, **more: str) -> Settings:
    password = tmp_path / "pathway.password"
    password.write_text("s3cret\n", encoding="utf-8")
    fields: dict[str, str] = {
        "kafka_bootstrap": REMOTE,
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_username": "pathway",
        "kafka_sasl_password_file": str(password),
        "kafka_ssl_cafile": str(pki["ca"]),
        **more,
    }
    return Settings(**fields)  # type: ignore[arg-type]


def test_plaintext_on_loopback_needs_nothing() -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:19092", kafka_security_protocol="PLAINTEXT")
    assert kafka_python_security(settings) == {"security_protocol": "PLAINTEXT"}
    assert aiokafka_security(settings) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None
    assert faust_app_options(settings)["broker"] == "kafka://127.0.0.1:19092"


def test_sasl_ssl_gives_every_library_the_same_principal(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    settings = _sasl_ssl(pki, tmp_path)
    for options in (kafka_python_security(settings), aiokafka_security(settings)):
        assert options["security_protocol"] == "SASL_SSL"
        assert options["sasl_mechanism"] == "SCRAM-SHA-512"
        assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
            "pathway",
            "s3cret",
        )
        context = options["ssl_context"]
        assert isinstance(context, ssl.SSLContext)
        assert context.check_hostname and context.verify_mode is ssl.CERT_REQUIRED
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert (credentials.username, credentials.password) == ("pathway", "s3cret")
    app = faust_app_options(settings)
    assert app["broker"] == "kafka://kafka-1.internal:9093;kafka://kafka-2.internal:9093"
    assert "s3cret" not in repr(settings)


def test_sasl_plaintext_and_ssl_only(pki: dict[str, Path], tmp_path: Path) -> None:
    sasl = Settings(
        kafka_bootstrap="localhost:19092",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="discharge",
        kafka_sasl_password="pw",
    )
    assert "ssl_context" not in aiokafka_security(sasl)
    credentials = faust_credentials(sasl)
    assert credentials.protocol.value == "SASL_PLAINTEXT"
    assert credentials.mechanism.value == "SCRAM-SHA-256"
    mtls = Settings(
        kafka_bootstrap=REMOTE,
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=str(pki["ca"]),
        kafka_ssl_certfile=str(pki["client.crt"]),
        kafka_ssl_keyfile=str(pki["client.key"]),
    )
    assert set(kafka_python_security(mtls)) == {"security_protocol", "ssl_context"}
    assert isinstance(faust_credentials(mtls), faust.SSLCredentials)


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"kafka_security_protocol": "PLAINTEXT"}, "in clear"),
        ({"kafka_security_protocol": "SASL_PLAINTEXT"}, "in clear"),
        ({"kafka_security_protocol": "TLS"}, "one of"),
        ({"kafka_sasl_mechanism": "PLAIN"}, "KAFKA_SASL_MECHANISM=PLAIN"),
        ({"kafka_sasl_username": ""}, "needs KAFKA_SASL_USERNAME"),
        ({"kafka_sasl_password": "also"}, "not both"),
        ({"kafka_sasl_password_file": "/nonexistent/pw"}, "No such file"),
        ({"kafka_ssl_certfile": "client.crt"}, "go together"),
        ({"kafka_ssl_cafile": "/nonexistent/ca"}, "Kafka TLS files"),
    ],
)
def test_partial_or_unsafe_settings_are_refused(
    pki: dict[str, Path], tmp_path: Path, fields: dict[str, str], complaint: str
) -> None:
    settings = _sasl_ssl(pki, tmp_path, **fields)
    with pytest.raises(KafkaSecurityError, match=complaint):
        aiokafka_security(settings)


def test_ssl_files_without_tls_are_a_mistake(pki: dict[str, Path]) -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", kafka_ssl_cafile=str(pki["ca"]))
    with pytest.raises(KafkaSecurityError, match="has no TLS"):
        kafka_python_security(settings)


def test_insecure_dev_allows_plaintext_to_a_remote_broker() -> None:
    settings = Settings(kafka_bootstrap=REMOTE, insecure_dev=True)
    assert kafka_python_security(settings) == {"security_protocol": "PLAINTEXT"}


def test_broker_urls_keep_an_explicit_scheme() -> None:
    assert faust_broker_url(" a:1, kafka://b:2 ,") == "kafka://a:1;kafka://b:2"
