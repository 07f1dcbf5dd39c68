"""gRPC transport security from the settings, checked whole: a partial TLS configuration
is an error at start-up, never a silent fall-back to plaintext.

Server: `OVERGANG_TLS_CERT` + `OVERGANG_TLS_KEY` (=> TLS), plus `OVERGANG_TLS_CLIENT_CA`
(=> mTLS: a client certificate signed by that CA is required).
Client: `OVERGANG_TLS_CA` (=> TLS, trusting that CA), plus `OVERGANG_TLS_CLIENT_CERT` +
`OVERGANG_TLS_CLIENT_KEY` (=> presents that certificate).
"""

from __future__ import annotations

from pathlib import Path

import grpc

from overgang.config import Settings


class TlsConfigError(RuntimeError):
    """The TLS settings are incomplete or unreadable."""


def _read(path: str, variable: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"{variable}={path}: {exc.strerror}") from None
    if not data.strip():
        raise TlsConfigError(f"{variable}={path}: empty file")
    return data


def server_tls_enabled(settings: Settings) -> bool:
    """True when the server speaks TLS; raises TlsConfigError on a partial configuration."""
    cert, key, ca = settings.tls_cert, settings.tls_key, settings.tls_client_ca
    if bool(cert) != bool(key):
        given, missing = (
            ("OVERGANG_TLS_CERT", "OVERGANG_TLS_KEY")
            if cert
            else ("OVERGANG_TLS_KEY", "OVERGANG_TLS_CERT")
        )
        raise TlsConfigError(f"{given} is set but {missing} is not: refusing to serve plaintext")
    if ca and not cert:
        raise TlsConfigError(
            "OVERGANG_TLS_CLIENT_CA is set without OVERGANG_TLS_CERT/OVERGANG_TLS_KEY: "
            "mTLS needs a server certificate; refusing to serve plaintext"
        )
    return bool(cert)


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """None = plaintext (no TLS settings at all)."""
    if not server_tls_enabled(settings):
        return None
    cert = _read(settings.tls_cert, "OVERGANG_TLS_CERT")
    key = _read(settings.tls_key, "OVERGANG_TLS_KEY")
    client_ca = (
        _read(settings.tls_client_ca, "OVERGANG_TLS_CLIENT_CA") if settings.tls_client_ca else None
    )
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def channel_credentials(settings: Settings) -> grpc.ChannelCredentials | None:
    """Client side; None = plaintext (no OVERGANG_TLS_CA and no client certificate)."""
    ca, cert, key = settings.tls_ca, settings.tls_client_cert, settings.tls_client_key
    if bool(cert) != bool(key):
        raise TlsConfigError(
            "OVERGANG_TLS_CLIENT_CERT and OVERGANG_TLS_CLIENT_KEY go together (mTLS)"
        )
    if not ca and not cert:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca, "OVERGANG_TLS_CA") if ca else None,
        private_key=_read(key, "OVERGANG_TLS_CLIENT_KEY") if key else None,
        certificate_chain=_read(cert, "OVERGANG_TLS_CLIENT_CERT") if cert else None,
    )


def secure_channel(settings: Settings, address: str) -> grpc.Channel:
    """A blocking channel to `address`: TLS when the settings give a CA or a client
    certificate, plaintext otherwise."""
    credentials = channel_credentials(settings)
    if credentials is None:
        return grpc.insecure_channel(address)
    return grpc.secure_channel(address, credentials)
