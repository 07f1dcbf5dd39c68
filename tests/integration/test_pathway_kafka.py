"""The pathway service in-process against real Kafka: gRPC intake -> outbox -> topics, and
the consumer of hospital/municipal events. Topic names are fixed, so every test uses its
own episode id and reads back only records keyed by it."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kafka import KafkaConsumer, KafkaProducer

from overgang.codec import CONTENT_TYPE_PROTO, decode_event
from overgang.config import Settings
from overgang.kafka.records import reason_of
from overgang.kafka.topics import DEAD_LETTER, HOSPITAL_EVENTS, MUNICIPAL_EVENTS, PATHWAY_EVENTS
from overgang.v1 import events_pb2, pathway_pb2, pathway_pb2_grpc
from pathway.domain.national_id import with_check_digits
from pathway.runtime import PathwayRuntime

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

HER = "81234"
WAIT_S = 20.0


def valid_national_id(birth: str = "010190") -> str:
    """The first valid fødselsnummer for a birth date (DDMMYY)."""
    numbers = (with_check_digits(f"{birth}{individual}") for individual in range(100, 1000))
    return next(n for n in numbers if n is not None)


NID = valid_national_id()


class Service:
    def __init__(self, bootstrap: str, db: Path) -> None:
        settings = Settings(
            kafka_bootstrap=bootstrap,
            database_url=f"sqlite:///{db}",
            topic_partitions=3,
            auth_tokens="",
        )
        self.runtime = PathwayRuntime(
            settings, grpc_address="127.0.0.1:0", group_id=f"pathway-it-{uuid.uuid4().hex[:8]}"
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def call(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def __enter__(self) -> Service:
        self.thread.start()
        self.call(self.runtime.start())
        assert self.runtime.streams is not None
        # Joining the consumer group can take a while on a fresh broker: not the tests' time.
        self.call(asyncio.wait_for(self.runtime.streams.ready.wait(), timeout=60), timeout=70)
        return self

    def __exit__(self, *_: object) -> None:
        self.call(self.runtime.stop(grace=1.0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def service(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with Service(kafka_bootstrap, tmp_path_factory.mktemp("pathway") / "pathway.db") as running:
        yield running


@pytest.fixture(scope="module")
def stub(service: Service) -> Iterator[pathway_pb2_grpc.PathwayServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{service.runtime.port}") as channel:
        yield pathway_pb2_grpc.PathwayServiceStub(channel)


@pytest.fixture
def episode() -> str:
    return f"{HER}:it-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[KafkaProducer]:
    kafka = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    yield kafka
    kafka.close()


def event(episode: str, kind: str, seconds: int, **fields: Any) -> events_pb2.Event:
    msg = events_pb2.Event(
        event_id=f"{episode}:{kind}",
        episode_id=episode,
        municipality="1103",
        division=events_pb2.SOMATIC,
    )
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10) + dt.timedelta(seconds=seconds)
    msg.occurred_at.FromDatetime(at)
    body = getattr(msg, kind)
    body.SetInParent()
    for name, value in fields.items():
        if name == "needs":
            body.needs.extend(value)
        else:
            setattr(body, name, value)
    if kind == "discharge_ready_notified":
        body.ready_at.FromDatetime(at)
    return msg


def submit(stub: Any, msg: events_pb2.Event, national_id: str = "") -> None:
    request = pathway_pb2.SubmitHospitalEventRequest(event=msg, national_id=national_id)
    stub.SubmitHospitalEvent(request, timeout=10)


def read_keyed(
    bootstrap: str, topic: str, key: bytes, done: Callable[[list[Any]], bool]
) -> list[Any]:
    """Records of `topic` with `key`, from the beginning, until `done(records)` or timeout."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    found: list[Any] = []
    deadline = time.monotonic() + WAIT_S
    try:
        while time.monotonic() < deadline and not done(found):
            for records in consumer.poll(timeout_ms=500).values():
                found.extend(r for r in records if r.key == key)
        return found
    finally:
        consumer.close()


def test_submitted_events_reach_the_hospital_topic_keyed_by_episode_in_order(
    service: Service, stub: Any, episode: str, kafka_bootstrap: str
) -> None:
    submit(stub, event(episode, "admitted", 0), NID)
    submit(stub, event(episode, "discharge_ready_notified", 1, needs=[events_pb2.HOME_NURSING]))
    records = read_keyed(kafka_bootstrap, HOSPITAL_EVENTS, episode.encode(), lambda r: len(r) >= 2)
    assert [(decode_event(r.value).event_id, dict(r.headers)["content-type"]) for r in records] == [
        (f"{episode}:admitted", CONTENT_TYPE_PROTO),
        (f"{episode}:discharge_ready_notified", CONTENT_TYPE_PROTO),
    ]


def test_every_hospital_and_municipal_event_is_announced_once_on_the_pathway_topic(
    service: Service, stub: Any, episode: str, kafka_bootstrap: str, producer: KafkaProducer
) -> None:
    key = episode.encode()
    submit(stub, event(episode, "admitted", 0), NID)
    submit(stub, event(episode, "discharge_ready_notified", 1, needs=[events_pb2.HOME_NURSING]))
    # Straight onto the topics, as coordination and a hospital integration would.
    answer = event(episode, "service_ready", 2)
    producer.send(MUNICIPAL_EVENTS, key=key, value=answer.SerializeToString()).get(timeout=10)
    home = event(episode, "discharged", 3, destination=events_pb2.Discharged.HOME)
    producer.send(HOSPITAL_EVENTS, key=key, value=home.SerializeToString()).get(timeout=10)
    # Hospital and municipal records come from two topics, so their order is not fixed:
    # wait for all four announcements, then check each came exactly once.
    expected = [
        (f"{episode}:admitted:pathway", "STAGE_ADMITTED"),
        (f"{episode}:discharge_ready_notified:pathway", "STAGE_DISCHARGE_READY"),
        (f"{episode}:service_ready:pathway", "STAGE_DISCHARGE_READY"),
        (f"{episode}:discharged:pathway", "STAGE_RECEIVED"),
    ]
    wanted = {event_id for event_id, _stage in expected}

    def saw_all(found: list[Any]) -> bool:
        seen = {pathway_pb2.PathwayEvent.FromString(r.value).event_id for r in found}
        return wanted <= seen

    read_keyed(kafka_bootstrap, PATHWAY_EVENTS, key, saw_all)
    time.sleep(1.0)  # room for a (wrong) late duplicate
    records = read_keyed(kafka_bootstrap, PATHWAY_EVENTS, key, saw_all)
    announced = [pathway_pb2.PathwayEvent.FromString(r.value) for r in records]
    assert sorted((e.event_id, pathway_pb2.Stage.Name(e.to_stage)) for e in announced) == sorted(
        expected
    )


def test_an_undecodable_record_goes_to_the_dead_letter_topic_with_the_reason(
    service: Service, episode: str, kafka_bootstrap: str, producer: KafkaProducer
) -> None:
    key = episode.encode()
    producer.send(HOSPITAL_EVENTS, key=key, value=b"\xff\xff not protobuf").get(timeout=10)
    records = read_keyed(kafka_bootstrap, DEAD_LETTER, key, lambda r: len(r) >= 1)
    reasons = [reason_of(list(r.headers)) or "" for r in records]
    # The whole record is at fault ("$"), and it is not an overgang.v1.Event.
    assert [(r[:3], "protobuf overgang.v1.Event" in r) for r in reasons] == [("$: ", True)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_python_m_pathway_serves_until_sigterm_and_exits_cleanly(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'main.db'}",
        "PATHWAY_GRPC_ADDR": f"127.0.0.1:{port}",
        "OVERGANG_TOPIC_PARTITIONS": "3",
        "OVERGANG_AUTH_TOKENS": "",
    }
    log_file = tmp_path / "pathway.log"
    with log_file.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "pathway"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service="overgang.v1.PathwayService")
            grpc.channel_ready_future(channel).result(timeout=WAIT_S)
            status = health.Check(request, timeout=5).status
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (status, code) == (health_pb2.HealthCheckResponse.SERVING, 0), log_file.read_text()[
        -4000:
    ]


def test_a_municipal_event_on_the_hospital_topic_goes_to_the_dead_letter_topic(
    service: Service, stub: Any, episode: str, kafka_bootstrap: str, producer: KafkaProducer
) -> None:
    key = episode.encode()
    submit(stub, event(episode, "admitted", 0), NID)
    submit(stub, event(episode, "discharge_ready_notified", 1))
    misplaced = event(episode, "service_ready", 2)
    producer.send(HOSPITAL_EVENTS, key=key, value=misplaced.SerializeToString()).get(timeout=10)
    records = read_keyed(kafka_bootstrap, DEAD_LETTER, key, lambda r: len(r) >= 1)
    assert [reason_of(list(r.headers)) for r in records] == [
        "serviceReady is a municipal event, not a hospital event"
    ]
