"""Kafka transport security for every client, from one set of settings.

    KAFKA_SECURITY_PROTOCOL   PLAINTEXT (default) | SSL | SASL_PLAINTEXT | SASL_SSL
    KAFKA_SASL_MECHANISM      SCRAM-SHA-512 (default) | SCRAM-SHA-256
    KAFKA_SASL_USERNAME       the service's principal (User:<name> in the ACLs)
    KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE (preferred: not in the environment)
    KAFKA_SSL_CAFILE          CA that signed the brokers' certificates (default: system CAs)
    KAFKA_SSL_CERTFILE + KAFKA_SSL_KEYFILE   client certificate (mTLS), optional

Plaintext (PLAINTEXT, SASL_PLAINTEXT) is refused for a broker beyond loopback unless
OVERGANG_INSECURE_DEV=1: health data does not cross a network in clear.

The builders, one per client library:
    kafka_python_security(settings)  -> kwargs for KafkaAdminClient/KafkaProducer/KafkaConsumer
    aiokafka_security(settings)      -> kwargs for AIOKafkaProducer/AIOKafkaConsumer
    faust_credentials(settings)      -> faust.SASLCredentials / SSLCredentials / None
    faust_app_options(settings)      -> {"broker": ..., "broker_credentials": ...} for faust.App
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from overgang.config import Settings, is_loopback

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")


class KafkaSecurityError(ValueError):
    """The Kafka security settings are incomplete, contradictory or unsafe."""


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    mechanism: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    cafile: str = ""
    certfile: str = ""
    keyfile: str = ""

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")


def _password(settings: Settings) -> str:
    if settings.kafka_sasl_password and settings.kafka_sasl_password_file:
        raise KafkaSecurityError("set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both")
    if not settings.kafka_sasl_password_file:
        return settings.kafka_sasl_password
    path = settings.kafka_sasl_password_file
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise KafkaSecurityError(f"KAFKA_SASL_PASSWORD_FILE={path}: {exc.strerror}") from None


def _check_transport(settings: Settings, protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise KafkaSecurityError(f"KAFKA_SECURITY_PROTOCOL={protocol}: one of {PROTOCOLS}")
    in_clear = protocol in ("PLAINTEXT", "SASL_PLAINTEXT")
    if in_clear and not settings.insecure_dev and not is_loopback(settings.kafka_bootstrap):
        raise KafkaSecurityError(
            f"KAFKA_SECURITY_PROTOCOL={protocol} to {settings.kafka_bootstrap}: records "
            "would cross the network in clear; use SSL or SASL_SSL (plaintext is for a "
            "broker on loopback, or OVERGANG_INSECURE_DEV=1)"
        )
    cert, key = settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile
    if bool(cert) != bool(key):
        raise KafkaSecurityError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together")
    if (cert or settings.kafka_ssl_cafile) and protocol not in ("SSL", "SASL_SSL"):
        raise KafkaSecurityError(
            f"KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL={protocol} has no TLS"
        )


def kafka_security(settings: Settings) -> KafkaSecurity:
    """The validated security settings; raises KafkaSecurityError on anything partial."""
    protocol = settings.kafka_security_protocol.upper()
    _check_transport(settings, protocol)
    mechanism = username = password = ""
    if protocol.startswith("SASL_"):
        mechanism = settings.kafka_sasl_mechanism.upper()
        if mechanism not in MECHANISMS:
            raise KafkaSecurityError(f"KAFKA_SASL_MECHANISM={mechanism}: one of {MECHANISMS}")
        username, password = settings.kafka_sasl_username, _password(settings)
        if not username or not password:
            raise KafkaSecurityError(
                f"{protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD(_FILE)"
            )
    return KafkaSecurity(
        protocol,
        mechanism,
        username,
        password,
        cafile=settings.kafka_ssl_cafile,
        certfile=settings.kafka_ssl_certfile,
        keyfile=settings.kafka_ssl_keyfile,
    )


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext | None:
    """Verifies the broker's certificate and host name; TLS 1.2 at least."""
    if not security.tls:
        return None
    try:
        context = ssl.create_default_context(cafile=security.cafile or None)
        if security.certfile:
            context.load_cert_chain(security.certfile, security.keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise KafkaSecurityError(f"Kafka TLS files: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def client_security(settings: Settings) -> dict[str, Any]:
    """Keyword arguments shared by kafka-python and aiokafka clients (the names agree)."""
    security = kafka_security(settings)
    options: dict[str, Any] = {"security_protocol": security.protocol}
    context = ssl_context(security)
    if context is not None:
        options["ssl_context"] = context
    if security.sasl:
        options |= {
            "sasl_mechanism": security.mechanism,
            "sasl_plain_username": security.username,
            "sasl_plain_password": security.password,
        }
    return options


def kafka_python_security(settings: Settings) -> dict[str, Any]:
    """`KafkaAdminClient(bootstrap_servers=..., **kafka_python_security(settings))`, and the
    same for `KafkaProducer` / `KafkaConsumer`."""
    return client_security(settings)


def aiokafka_security(settings: Settings) -> dict[str, Any]:
    """`AIOKafkaProducer(bootstrap_servers=..., **aiokafka_security(settings))`, and the
    same for `AIOKafkaConsumer`."""
    return client_security(settings)


def faust_broker_url(bootstrap: str) -> str:
    """ "host:port,host:port" -> Faust's "kafka://host:port;kafka://host:port". The scheme
    names the transport (aiokafka), not the security: that is `broker_credentials`."""
    hosts = [h.strip() for h in bootstrap.split(",") if h.strip()]
    return ";".join(h if "://" in h else f"kafka://{h}" for h in hosts)


def faust_credentials(settings: Settings) -> Any:
    """`faust.App(..., broker_credentials=faust_credentials(settings))`; None = plaintext."""
    import faust  # here: importing Faust is slow, and most callers never need it

    security = kafka_security(settings)
    context = ssl_context(security)
    if security.sasl:
        return faust.SASLCredentials(
            username=security.username,
            password=security.password,
            mechanism=security.mechanism,
            ssl_context=context,
        )
    return faust.SSLCredentials(context) if context is not None else None


def faust_app_options(settings: Settings) -> dict[str, Any]:
    """`faust.App(app_id, **faust_app_options(settings), ...)`: the broker and its
    credentials."""
    return {
        "broker": faust_broker_url(settings.kafka_bootstrap),
        "broker_credentials": faust_credentials(settings),
    }
