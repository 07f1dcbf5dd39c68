"""gRPC transport security: with a server certificate the services speak TLS; with a
client CA as well they demand a client certificate (mTLS). Closed by default: no auth or no
TLS means loopback only, a partial TLS configuration stops the start; resource limits."""

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
from overgang.grpc.server import GrpcServer, InsecureServerError, check_exposure, server_options
from overgang.grpc.tls import TlsConfigError, channel_credentials, secure_channel


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


# --- closed by default: no auth or no TLS => loopback only; partial TLS is an error


def _tls(pki: dict[str, Path], **more: str) -> Settings:
    return Settings(tls_cert=str(pki["server.crt"]), tls_key=str(pki["server.key"]), **more)


@pytest.mark.parametrize("address", ["127.0.0.1:0", "localhost:0", "[::1]:0", "127.0.0.2:0"])
def test_no_auth_is_allowed_on_loopback(address: str) -> None:
    check_exposure(address, Settings(auth_tokens="", auth_tokens_file=""), auth_enabled=False)


@pytest.mark.parametrize("address", ["0.0.0.0:0", "[::]:50051", "10.1.2.3:50051", "pathway:1"])
def test_no_auth_beyond_loopback_refuses_to_start(address: str, pki: dict[str, Path]) -> None:
    with pytest.raises(InsecureServerError, match="without auth tokens"):
        check_exposure(address, _tls(pki), auth_enabled=False)


def test_grpc_server_refuses_all_interfaces_without_tokens() -> None:
    with pytest.raises(InsecureServerError, match=r"without auth tokens and TLS"):
        GrpcServer("0.0.0.0:0", [], lambda _s: None, Settings(auth_tokens="", auth_tokens_file=""))


def test_tokens_without_tls_beyond_loopback_refuse_to_start() -> None:
    settings = Settings(auth_tokens="t=ops", auth_tokens_file="")
    with pytest.raises(InsecureServerError, match=r"without TLS"):
        GrpcServer("0.0.0.0:0", [], lambda _s: None, settings)


async def _bound_port(address: str, settings: Settings) -> int:
    server = GrpcServer(address, [], lambda _s: None, settings)
    await server.start()
    await server.stop(0)
    return server.port


def test_tokens_and_tls_may_listen_on_all_interfaces(pki: dict[str, Path]) -> None:
    assert asyncio.run(_bound_port("0.0.0.0:0", _tls(pki, auth_tokens="t=ops"))) > 0


def test_insecure_dev_lets_an_open_server_listen_beyond_loopback() -> None:
    settings = Settings(auth_tokens="", auth_tokens_file="", insecure_dev=True)
    assert asyncio.run(_bound_port("0.0.0.0:0", settings)) > 0


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"tls_cert": "server.crt"}, "OVERGANG_TLS_CERT is set but OVERGANG_TLS_KEY is not"),
        ({"tls_key": "server.key"}, "OVERGANG_TLS_KEY is set but OVERGANG_TLS_CERT is not"),
        ({"tls_client_ca": "ca"}, "OVERGANG_TLS_CLIENT_CA is set without"),
        ({"tls_cert": "server.crt", "tls_key": "missing"}, "OVERGANG_TLS_KEY=.*No such file"),
    ],
)
def test_partial_tls_configuration_is_an_error_at_start_up(
    pki: dict[str, Path], fields: dict[str, str], complaint: str
) -> None:
    settings = Settings(**{k: str(pki.get(v, pki["ca"].parent / v)) for k, v in fields.items()})
    with pytest.raises(TlsConfigError, match=complaint):
        GrpcServer("127.0.0.1:0", [], lambda _s: None, settings)


# --- resource limits


async def _limits(settings: Settings) -> tuple[grpc.StatusCode, grpc.StatusCode]:
    server = GrpcServer("127.0.0.1:0", [], lambda _s: None, settings)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as too_big:
                await stub.Check(health_pb2.HealthCheckRequest(service="x" * 5000), timeout=5)
            watch = stub.Watch(health_pb2.HealthCheckRequest())  # holds the only slot
            await watch.read()
            with pytest.raises(grpc.aio.AioRpcError) as too_many:
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            watch.cancel()
            return too_big.value.code(), too_many.value.code()
    finally:
        await server.stop(0)


def test_oversized_requests_and_excess_rpcs_are_refused() -> None:
    settings = Settings(grpc_max_message_bytes=4096, grpc_max_concurrent_rpcs=1)
    too_big, too_many = asyncio.run(_limits(settings))
    assert too_big is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert too_many is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_default_limits() -> None:
    options = dict(server_options(Settings()))
    assert options["grpc.max_receive_message_length"] == 1024 * 1024
    assert options["grpc.keepalive_time_ms"] == 20_000
    assert Settings().grpc_max_concurrent_rpcs == 256


# --- client side: the CLI speaks TLS when given a CA


def test_cli_channel_speaks_tls_with_a_ca(pki: dict[str, Path]) -> None:
    server_settings = _tls(pki, tls_client_ca=str(pki["ca"]))

    async def serve() -> None:
        server = GrpcServer("127.0.0.1:0", [], lambda _s: None, server_settings)
        await server.start()
        try:
            client = Settings(
                tls_ca=str(pki["ca"]),
                tls_client_cert=str(pki["client.crt"]),
                tls_client_key=str(pki["client.key"]),
            )
            channel = secure_channel(client, f"localhost:{server.port}")
            try:
                stub = health_pb2_grpc.HealthStub(channel)
                reply = await asyncio.to_thread(stub.Check, health_pb2.HealthCheckRequest())
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            finally:
                channel.close()
        finally:
            await server.stop(0)

    asyncio.run(serve())


def test_client_certificate_without_key_is_an_error(pki: dict[str, Path]) -> None:
    with pytest.raises(TlsConfigError, match="go together"):
        channel_credentials(Settings(tls_client_cert=str(pki["client.crt"])))
    assert channel_credentials(Settings(tls_ca="", tls_client_cert="", tls_client_key="")) is None
