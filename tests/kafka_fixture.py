"""Session-wide real Kafka for tests marked ``@pytest.mark.kafka``.

Order of preference for ``kafka_bootstrap``:

1. ``KAFKA_BOOTSTRAP_SERVERS`` if set (an already running Kafka; used as-is).
2. testcontainers ``KafkaContainer`` in KRaft mode, but only if a Docker engine answers a ping.
3. The local Apache Kafka broker from Maven jars: ``infra/kafka/kafka.sh start`` + ``wait``
   (port ``KAFKA_PORT`` and data dir ``OVERGANG_KAFKA_DATA``; conftest.py defaults them to
   19392 and ``<repo>/.kafka-test``, apart from the developer's stack on 19092).
   It is stopped at session end only if this fixture started it.

Every test that uses the broker checks, before and after, that the broker answering is the
one the session started with (`same_broker`): a broker stopped and another started on the
same port (e.g. a second CI run on the same machine) would otherwise feed this session's
services another run's records, and the other run's services this session's.

If no Kafka can be had the fixture FAILS (never skips): a test that needs Kafka and did not run
it is a failure, not a pass.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_SH = REPO_ROOT / "infra" / "kafka" / "kafka.sh"
# fetch (cold: ~30 s) + format + start + wait (KAFKA_WAIT_SECONDS, default 90 s)
_START_TIMEOUT_S = 900


def _docker_answers() -> bool:
    """True only if a Docker engine answers; returns fast when there is none."""
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _testcontainers_kafka() -> contextlib.AbstractContextManager[str]:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:
        from testcontainers.kafka import KafkaContainer

    @contextlib.contextmanager
    def _run() -> Iterator[str]:
        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()

    return _run()


def _kafka_sh(*args: str, timeout: float = _START_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(KAFKA_SH), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _fail(what: str, proc: subprocess.CompletedProcess[str]) -> None:
    pytest.fail(
        f"could not get a local Kafka broker: `kafka.sh {what}` exited {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-8000:]}",
        pytrace=False,
    )


@contextlib.contextmanager
def _local_kafka() -> Iterator[str]:
    already_running = _kafka_sh("status", timeout=30).returncode == 0
    try:
        start = _kafka_sh("start")
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`kafka.sh start` timed out: {exc}", pytrace=False)
    if start.returncode != 0:
        _fail("start", start)
    bootstrap = start.stdout.strip().splitlines()[-1]
    started_here = not already_running
    try:
        try:
            ready = _kafka_sh("wait")
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"`kafka.sh wait` timed out: {exc}", pytrace=False)
        if ready.returncode != 0:
            _fail("wait", ready)
        yield bootstrap
    finally:
        if started_here:
            _kafka_sh("stop", timeout=120)


def _cluster_id(bootstrap: str) -> str:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    try:
        return str(admin.describe_cluster()["cluster_id"])
    finally:
        admin.close()


class BrokerIdentity:
    """The cluster id of the session's broker, and a check that it still answers."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.cluster_id = _cluster_id(bootstrap)

    def check(self, when: str) -> None:
        answering = _cluster_id(self.bootstrap)
        if answering != self.cluster_id:
            pytest.fail(
                f"{when}: the broker at {self.bootstrap} is cluster {answering}, not this "
                f"session's {self.cluster_id}: another broker took the port (a second test "
                "run on this machine?); its records are not this session's",
                pytrace=False,
            )


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers ("host:port[,host:port]") of a real Kafka broker."""
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if env:
        yield env
        return
    if _docker_answers():
        with _testcontainers_kafka() as bootstrap:
            yield bootstrap
        return
    with _local_kafka() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def broker_identity(kafka_bootstrap: str) -> BrokerIdentity:
    return BrokerIdentity(kafka_bootstrap)


@pytest.fixture(autouse=True)
def same_broker(request: pytest.FixtureRequest) -> Iterator[None]:
    """For a test that uses the session's broker: it is the same broker before and after."""
    if "kafka_bootstrap" not in request.fixturenames:
        yield
        return
    identity: BrokerIdentity = request.getfixturevalue("broker_identity")
    identity.check("before the test")
    yield
    identity.check("after the test")


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Factory for unique topic/group/app names: ``unique_name("cases")`` -> ``cases-1f3a...``."""

    def make(prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    return make


def skip_history(bootstrap: str, group_id: str, topic: str) -> None:
    """Commit the topic's end offsets for a (new) consumer group, so a service reads only
    what its test produces, however much a shared broker already holds."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        ends = consumer.end_offsets(partitions)
        consumer.commit({tp: OffsetAndMetadata(end, "", -1) for tp, end in ends.items()})
    finally:
        consumer.close()
