"""Issue 7's rules through the running discharge service on real Kafka, each checked
against `overgang replay` on the same events: a clock running today bills rate-pending
days and re-prices them when the operator adds the year's rate; divisions are covered
from their own date; nothing opens after death; "as of" means as of; every period
carries its evidence; a bad record is dead-lettered and stops nothing."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from clock_probe import (
    announced_events,
    announced_totals,
    dead_letter_reasons,
    discharge_service,
    replay_statements,
    wait_until_equal,
)
from kafka import KafkaProducer
from unit.episode_story import Episode, at

from discharge.rules import DEFAULT_RATES
from overgang.codec import event_to_json, event_to_proto
from overgang.events import Division, EpisodeEvent
from overgang.kafka.event_producer import produce_events
from overgang.kafka.topics import HOSPITAL_EVENTS
from tooling.launcher import ServiceProcess

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

TODAY = "2026-06-01"  # no verified rate for 2025 or 2026: those days are rate-pending
TEST_RATES = "\n[rates]\n2025 = 5900\n2026 = 6100\n"  # a test fixture, not a real rate


def stories(her_id: str) -> dict[str, Episode]:
    def episode(name: str, division: Division = Division.SOMATIC) -> Episode:
        return Episode(f"{her_id}:{name}", division=division)

    return {
        "rate-pending": episode("rate-pending")
        .admission_notice(at("2026-05-18"))
        .discharge_ready(at("2026-05-20")),
        "across-the-rate-gap": episode("across-the-rate-gap")
        .admission_notice(at("2024-12-20"))
        .discharge_ready(at("2024-12-28"))
        .service_ready(at("2025-01-03")),
        "psychiatry-before-2019": episode("psychiatry-before-2019", Division.MENTAL_HEALTH)
        .admission_notice(at("2018-12-20"))
        .discharge_ready(at("2018-12-28"))
        .service_ready(at("2019-01-04")),
        "notice-after-death": episode("notice-after-death")
        .admission_notice(at("2024-03-01"))
        .died(at("2024-03-03"))
        .discharge_ready(at("2024-03-05")),
        "ready-after-as-of": episode("ready-after-as-of")
        .admission_notice(at("2026-05-20"))
        .discharge_ready(at("2026-05-25"))
        .service_ready(at("2026-06-03")),
        "withdrawal-and-notice-at-one-instant": episode("withdrawal-and-notice-at-one-instant")
        .admission_notice(at("2024-03-01"))
        .discharge_ready(at("2024-03-04"))
        .withdrawn(at("2024-03-07"))
        .discharge_ready(at("2024-03-07"))
        .answer(at("2024-03-08"), can_receive=False)
        .service_ready(at("2024-03-11")),
    }


@pytest.fixture
def rates_file(tmp_path: Path) -> Path:
    path = tmp_path / "rates.toml"
    path.write_text(DEFAULT_RATES.read_text())
    return path


@pytest.fixture
def discharge(kafka_bootstrap: str, tmp_path: Path, rates_file: Path) -> Iterator[ServiceProcess]:
    # The stories reach back to 2018: wide plausibility windows, or they are dead-lettered.
    windows = tmp_path / "plausibility.toml"
    windows.write_text(
        "[windows]\nmax_age_days = 10000\nmax_before_first_event_days = 10000\n"
        "max_ready_before_notice_days = 7\n"
    )
    service = discharge_service(
        kafka_bootstrap,
        tmp_path,
        clock_date=TODAY,
        OVERGANG_RATES_FILE=str(rates_file),
        OVERGANG_RATES_POLL_SECONDS="2",
        OVERGANG_PLAUSIBILITY_FILE=str(windows),
    )
    yield service.start().wait_serving()
    service.stop()


def _replay(history: Path, rates_file: Path) -> dict[str, dict[str, object]]:
    # Exit status 1: the notice after death is reported as a conflict.
    return replay_statements(history, TODAY, "--rates", str(rates_file), allowed_exit=(0, 1))


def test_the_live_clock_follows_the_rules_and_replay_through_a_new_rate_table(
    kafka_bootstrap: str, discharge: ServiceProcess, tmp_path: Path, rates_file: Path
) -> None:
    her_id = str(random.randint(10_000_000, 99_999_999))
    episodes = stories(her_id)
    events: list[EpisodeEvent] = [e for story in episodes.values() for e in story.events]
    # A division number this version does not know: one record's error, nobody else's.
    unknown = event_to_proto(Episode(f"{her_id}:unknown-enum").admitted(at("2024-03-01")).events[0])
    unknown.division = 99  # type: ignore[assignment]
    bad_key = unknown.episode_id.encode()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(HOSPITAL_EVENTS, key=bad_key, value=unknown.SerializeToString())
    producer.flush()
    producer.close()
    produce_events(kafka_bootstrap, events)

    history = tmp_path / "events.jsonl"
    history.write_text("".join(event_to_json(e) + "\n" for e in events))
    expected = _replay(history, rates_file)
    by_story = {name: expected[story.episode_id] for name, story in episodes.items()}
    assert by_story["rate-pending"]["pendingDays"] == 12
    assert by_story["across-the-rate-gap"]["pendingDays"] == 2
    assert by_story["psychiatry-before-2019"]["liableDays"] == 3
    assert by_story["notice-after-death"]["periods"] == []
    assert by_story["ready-after-as-of"]["status"] == "RUNNING"
    assert len(by_story["withdrawal-and-notice-at-one-instant"]["periods"]) == 2  # type: ignore[arg-type]
    wait_until_equal(discharge.grpc_address, expected)
    assert dead_letter_reasons(kafka_bootstrap, bad_key)

    # The operator adds the missing years: no restart, the running service re-prices.
    rates_file.write_text(rates_file.read_text().replace("\n[rates]\n", TEST_RATES, 1))
    repriced = _replay(history, rates_file)
    assert repriced[episodes["rate-pending"].episode_id]["pendingDays"] == 0
    wait_until_equal(discharge.grpc_address, repriced)

    announced = announced_totals(kafka_bootstrap, her_id)
    assert {k: v for k, v in announced.items() if v != (0, 0)} == {
        k: (e["amountNok"], e["pendingDays"])
        for k, e in repriced.items()
        if (e["amountNok"], e["pendingDays"]) != (0, 0)
    }
    corrections = [
        e.corrected for e in announced_events(kafka_bootstrap, her_id) if e.HasField("corrected")
    ]
    assert any(c.cause_event_id.startswith("rates-") for c in corrections)
