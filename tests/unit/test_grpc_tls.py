"""gRPC transport security: with a server certificate the services speak TLS; with a
client CA as well they demand a client certificate (mTLS)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from overgang.config import Settings
from overgang.grpc.server import GrpcServer


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(
    name: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, ca: bool = False
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256()), key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pki")
    ca, ca_key = _issue("overgang test CA", None, ca=True)
    server, server_key = _issue("localhost", (ca.subject, ca_key))
    client, client_key = _issue("coordinator", (ca.subject, ca_key))
    files = {
        "ca": ca.public_bytes(serialization.Encoding.PEM),
        "server.crt": server.public_bytes(serialization.Encoding.PEM),
        "server.key": _pem_key(server_key),
        "client.crt": client.public_bytes(serialization.Encoding.PEM),
        "client.key": _pem_key(client_key),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    return {name: root / name for name in files}


async def _health(port: int, credentials: grpc.ChannelCredentials) -> int:
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        return int(reply.status)


async def _serve_and_check(settings: Settings, credentials: grpc.ChannelCredentials) -> int:
    server = GrpcServer("127.0.0.1:0", [], lambda _s: None, settings)
    await server.start()
    try:
        return await _health(server.port, credentials)
    finally:
        await server.stop(0)


def test_tls_server_answers_a_client_that_trusts_its_ca(pki: dict[str, Path]) -> None:
    settings = Settings(tls_cert=str(pki["server.crt"]), tls_key=str(pki["server.key"]))
    credentials = grpc.ssl_channel_credentials(root_certificates=pki["ca"].read_bytes())
    status = asyncio.run(_serve_and_check(settings, credentials))
    assert status == health_pb2.HealthCheckResponse.SERVING


def test_mtls_server_answers_a_client_with_a_certificate(pki: dict[str, Path]) -> None:
    settings = Settings(
        tls_cert=str(pki["server.crt"]),
        tls_key=str(pki["server.key"]),
        tls_client_ca=str(pki["ca"]),
    )
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki["ca"].read_bytes(),
        private_key=pki["client.key"].read_bytes(),
        certificate_chain=pki["client.crt"].read_bytes(),
    )
    status = asyncio.run(_serve_and_check(settings, credentials))
    assert status == health_pb2.HealthCheckResponse.SERVING


def test_mtls_server_refuses_a_client_without_a_certificate(pki: dict[str, Path]) -> None:
    settings = Settings(
        tls_cert=str(pki["server.crt"]),
        tls_key=str(pki["server.key"]),
        tls_client_ca=str(pki["ca"]),
    )
    credentials = grpc.ssl_channel_credentials(root_certificates=pki["ca"].read_bytes())
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        asyncio.run(_serve_and_check(settings, credentials))
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
