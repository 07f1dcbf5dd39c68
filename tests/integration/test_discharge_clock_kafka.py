"""The discharge service against real Kafka gives the numbers `overgang replay` gives,
also after a crash (SIGKILL) and restart, and for an event that arrives late."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from clock_probe import (
    announced_totals,
    dead_letter_reasons,
    discharge_service,
    replay_statements,
    wait_until_equal,
)
from kafka import KafkaProducer

from overgang.codec import event_to_json
from overgang.events import EventKind
from overgang.kafka.event_producer import produce_events
from overgang.kafka.topics import HOSPITAL_EVENTS
from tooling.launcher import ServiceProcess
from tooling.simulation import all_events, simulate_month

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]


@pytest.fixture
def discharge(kafka_bootstrap: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    service = discharge_service(kafka_bootstrap, tmp_path)
    yield service.start().wait_serving()
    service.stop()


def test_live_clock_equals_replay_through_a_crash_and_a_late_event(
    kafka_bootstrap: str, discharge: ServiceProcess, tmp_path: Path
) -> None:
    her_id = str(random.randint(10_000_000, 99_999_999))
    episodes = simulate_month(2024, 3, 60, seed=7, her_id=her_id)
    events = list(all_events(episodes))
    # Any order, some duplicates: the hospital integration retries, Kafka redelivers.
    rnd = random.Random(3)
    arrivals = events + rnd.sample(events, 12)
    rnd.shuffle(arrivals)
    produce_events(kafka_bootstrap, arrivals)
    bad_key = f"{her_id}:garbage".encode()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(HOSPITAL_EVENTS, key=bad_key, value=b"\x08\x96\x01not an event")
    producer.flush()
    producer.close()

    history = tmp_path / "events.jsonl"
    history.write_text("".join(event_to_json(e) + "\n" for e in events))
    expected = replay_statements(history)
    assert len(expected) == 60 and sum(int(e["amountNok"]) for e in expected.values()) > 0  # type: ignore[call-overload]
    wait_until_equal(discharge.grpc_address, expected)

    # A crash, then a restart: the table comes back from its changelog.
    discharge.kill()
    discharge.start().wait_serving()
    wait_until_equal(discharge.grpc_address, expected, timeout=30)

    # An admission notice that was sent in time but arrives late un-voids a period.
    void = next(
        e
        for e in episodes
        if e.story == "missing-admission-notice" or e.story == "late-admission-notice"
    )
    notice = next(e for e in void.hospital if e.kind is EventKind.DISCHARGE_READY_NOTIFIED)
    late = dataclasses.replace(
        notice,
        event_id=f"{void.episode_id}:late-admission-notice",
        kind=EventKind.ADMISSION_NOTIFIED,
        occurred_at=notice.occurred_at - dt.timedelta(hours=2),
        ready_at=None,
    )
    produce_events(kafka_bootstrap, [late])
    with history.open("a") as handle:
        handle.write(event_to_json(late) + "\n")
    expected = replay_statements(history)
    assert expected[void.episode_id]["status"] != "VOID"
    wait_until_equal(discharge.grpc_address, expected)

    announced = {k: nok for k, (nok, _pending) in announced_totals(kafka_bootstrap, her_id).items()}
    assert {k: v for k, v in announced.items() if v} == {
        k: int(e["amountNok"])
        for k, e in expected.items()
        if e["amountNok"]  # type: ignore[call-overload]
    }
    assert any("not a protobuf" in r for r in dead_letter_reasons(kafka_bootstrap, bad_key))
