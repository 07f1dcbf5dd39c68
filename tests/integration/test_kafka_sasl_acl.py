"""The local broker in secure mode (`kafka.sh start-secure`: SASL_SSL, SCRAM-SHA-512,
StandardAuthorizer with the ACLs of infra/kafka/acls.toml): each service's principal may
write its own topics only, and a client without credentials gets nothing.

Runs its own broker on free ports in a temporary data dir (not the session broker on
19092) and stops it at the end.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from aiokafka.errors import TopicAuthorizationFailedError as AioTopicAuthorizationFailed
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    KafkaTimeoutError,
    TopicAuthorizationFailedError,
)
from sqlalchemy import create_engine
from sqlmodel import Session, SQLModel

from overgang.config import Settings
from overgang.kafka import topics
from overgang.kafka.security import faust_app_options, kafka_python_security
from overgang.sql.outbox import OutboxRelay, OutboxRow, enqueue

pytestmark = pytest.mark.kafka

KAFKA_SH = Path(__file__).resolve().parents[2] / "infra" / "kafka" / "kafka.sh"
REFUSED = KafkaTimeoutError  # kafka-python: "Unable to bootstrap"


def _free_port_pair() -> int:
    """A port P with P and P+1 (the controller) free."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port < 65000 and all(_free(p) for p in (port, port + 1)):
            return port
    raise RuntimeError("no two consecutive free ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _kafka_sh(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(KAFKA_SH), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module")
def secure_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """<data>/secure of a running secure broker: <principal>.env for each principal."""
    data = tmp_path_factory.mktemp("kafka-secure")
    env = {
        "KAFKA_PORT": str(_free_port_pair()),
        "OVERGANG_KAFKA_DATA": str(data),
        "KAFKA_SECURITY": "sasl_ssl",
    }
    try:
        started = _kafka_sh(env, "start-secure")
        if started.returncode != 0:
            pytest.fail(
                f"kafka.sh start-secure exited {started.returncode}\n{started.stderr[-6000:]}",
                pytrace=False,
            )
        yield data / "secure"
    finally:
        _kafka_sh(env, "stop")


def settings_of(secure_dir: Path, principal: str) -> Settings:
    """The settings a service gets from `<principal>.env` in its environment."""
    lines = (secure_dir / f"{principal}.env").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    with mock.patch.dict(os.environ, env):
        return Settings()


@pytest.fixture(scope="module")
def declared(secure_dir: Path) -> list[str]:
    """The admin creates every declared topic (the services may create only their own)."""
    admin = settings_of(secure_dir, "admin")
    topics.ensure_topics(admin)
    return [spec.name for spec in topics.declared_topics(admin)]


def produce(settings: Settings, topic: str) -> int:
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        max_block_ms=10_000,
        **kafka_python_security(settings),
    )
    try:
        return int(producer.send(topic, key=b"k", value=b"v").get(timeout=15).offset)
    finally:
        producer.close(timeout=5)


@pytest.mark.parametrize(
    ("principal", "allowed", "refused"),
    [
        (
            "pathway",
            [topics.HOSPITAL_EVENTS, topics.PATHWAY_EVENTS, topics.DEAD_LETTER],
            [topics.CLOCK_TICKS, topics.LIABILITY_EVENTS, topics.MUNICIPAL_EVENTS],
        ),
        (
            "discharge",
            [topics.LIABILITY_EVENTS, topics.CLOCK_TICKS],
            [topics.HOSPITAL_EVENTS, topics.PATHWAY_EVENTS],
        ),
        (
            "coordination",
            [topics.COORDINATION_TASKS, topics.MUNICIPAL_EVENTS],
            [topics.HOSPITAL_EVENTS, topics.CLOCK_TICKS],
        ),
        ("hospital", [topics.HOSPITAL_EVENTS], [topics.MUNICIPAL_EVENTS, topics.CLOCK_TICKS]),
    ],
)
def test_a_principal_writes_its_own_topics_only(
    secure_dir: Path, declared: list[str], principal: str, allowed: list[str], refused: list[str]
) -> None:
    settings = settings_of(secure_dir, principal)
    for topic in allowed:
        assert produce(settings, topic) >= 0
    for topic in refused:
        with pytest.raises(TopicAuthorizationFailedError):
            produce(settings, topic)


def test_a_service_reads_its_topics_in_its_own_group_only(
    secure_dir: Path, declared: list[str]
) -> None:
    pathway = settings_of(secure_dir, "pathway")
    produce(pathway, topics.HOSPITAL_EVENTS)

    def first(group: str, topic: str) -> bytes | None:
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=pathway.kafka_bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            consumer_timeout_ms=15_000,
            **kafka_python_security(pathway),
        )
        try:
            return next((record.value for record in consumer), None)
        finally:
            consumer.close()

    assert first(f"overgang-pathway-it-{uuid.uuid4().hex[:6]}", topics.HOSPITAL_EVENTS) == b"v"
    with pytest.raises(GroupAuthorizationFailedError):
        first("overgang-discharge", topics.HOSPITAL_EVENTS)
    with pytest.raises((TopicAuthorizationFailedError, KafkaError)):
        first(f"overgang-pathway-it-{uuid.uuid4().hex[:6]}", topics.LIABILITY_EVENTS)


def test_the_outbox_relay_publishes_with_the_services_credentials(
    secure_dir: Path, declared: list[str], tmp_path: Path
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    SQLModel.metadata.create_all(engine, tables=[OutboxRow.__table__])  # type: ignore[attr-defined]
    pathway = settings_of(secure_dir, "pathway")

    async def publish(topic: str) -> int:
        with Session(engine) as session:
            enqueue(session, topic, b"episode", b"event", [("content-type", b"x")])
            session.commit()
        relay = OutboxRelay(engine, pathway.kafka_bootstrap, settings=pathway)
        await relay.start()
        try:
            return await relay.publish_pending()
        finally:
            await relay.stop()

    assert asyncio.run(publish(topics.PATHWAY_EVENTS)) == 1
    with pytest.raises(AioTopicAuthorizationFailed):
        asyncio.run(asyncio.wait_for(publish(topics.CLOCK_TICKS), 30))


def test_a_faust_app_joins_and_consumes_with_the_services_credentials(
    secure_dir: Path, declared: list[str]
) -> None:
    """faust_app_options: SASL_SSL credentials, a group and internal topics under the
    service's prefix (the ACLs' `groups` and `internal`)."""
    import faust

    discharge = settings_of(secure_dir, "discharge")
    app = faust.App(
        f"overgang-discharge-it-{uuid.uuid4().hex[:8]}",
        **faust_app_options(discharge),
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        topic_partitions=discharge.topic_partitions,
        consumer_auto_offset_reset="earliest",
    )
    ticks = app.topic(topics.CLOCK_TICKS, key_serializer="raw", value_serializer="raw")
    marker = uuid.uuid4().hex.encode()
    seen = asyncio.Event()

    @app.agent(ticks)  # type: ignore[untyped-decorator]
    async def watch(stream: Any) -> None:
        async for value in stream:
            if value == marker:
                seen.set()

    async def run() -> None:
        await app.start()
        try:
            await ticks.send(key=b"tick", value=marker)
            await asyncio.wait_for(seen.wait(), 60)
        finally:
            await app.stop()

    asyncio.run(run())


def test_ensure_topics_as_a_service_leaves_others_topics_alone(
    secure_dir: Path, declared: list[str]
) -> None:
    discharge = settings_of(secure_dir, "discharge")
    assert topics.ensure_topics(discharge) == []  # all exist: it sees them (DESCRIBE)
    assert set(topics.partition_counts(discharge, [topics.CLOCK_TICKS])) == {topics.CLOCK_TICKS}


def _admin_client(bootstrap: str, **security: object) -> None:
    KafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=4000,
        bootstrap_timeout_ms=4000,
        **security,
    ).close()


def test_a_client_without_valid_credentials_is_refused(secure_dir: Path) -> None:
    pathway = settings_of(secure_dir, "pathway")
    secure = kafka_python_security(pathway)
    with pytest.raises(REFUSED):  # plaintext to the SASL_SSL listener
        _admin_client(pathway.kafka_bootstrap)
    with pytest.raises(REFUSED):  # TLS, but no SASL: unauthenticated
        _admin_client(
            pathway.kafka_bootstrap,
            security_protocol="SSL",
            ssl_context=secure["ssl_context"],
        )
    with pytest.raises(REFUSED):  # a wrong password
        _admin_client(pathway.kafka_bootstrap, **{**secure, "sasl_plain_password": "guess"})
    broker_log = (secure_dir.parent / "broker.log").read_text()
    assert "Failed authentication" in broker_log and "invalid credentials" in broker_log
    _admin_client(pathway.kafka_bootstrap, **secure)  # the broker is up: only they fail
