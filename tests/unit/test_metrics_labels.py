"""No national id and no episode id as a label: every family is fed, also with values
that carry ids where a bounded label belongs, the registry is scraped over HTTP, and no
exported label value looks like an 11-digit number or `<digits>:<something>`. Also what
the counting calls count: dead letters by reason class, liable days and NOK."""

from __future__ import annotations

import asyncio
import datetime as dt
import re

import pytest

from discharge.domain.liability_diff import ChangeKind, LiabilityChange
from discharge.domain.statement import LiableDay
from overgang.kafka.records import Consumed, reason_class, send_dead_letter
from overgang.logging import get_logger
from overgang.metrics import REASON_CLASSES, Metrics, label, use_metrics
from overgang.metrics_watch import ServiceMetrics, UnitTasks

from .test_metrics_http import scrape

NATIONAL_ID = "01017012345"
EPISODE = "80001:202403-0007"
HOSPITAL = "overgang.hospital-events.v1"
LOOKS_LIKE_AN_ID = (re.compile(r"\d{11}"), re.compile(r"^\d+:\S+"))


def _change(kind: ChangeKind, municipality: str, **days: object) -> LiabilityChange:
    return LiabilityChange(f"{EPISODE}:x", kind, EPISODE, municipality, **days)  # type: ignore[arg-type]


def _feed(service: ServiceMetrics) -> None:
    """Every family, with ids offered wherever a caller could slip one in."""
    metrics = service.metrics
    for topic in (HOSPITAL, f"{HOSPITAL}.{NATIONAL_ID}", EPISODE):
        metrics.record_in(service.service, topic)
        metrics.record_processed(service.service, topic)
        metrics.dead_lettered(service.service, topic, f"decode {NATIONAL_ID}")
    metrics.record_in(EPISODE, HOSPITAL)
    metrics.consumer_lags(service.service, {(HOSPITAL, 0): 3, (EPISODE, 1): 1})
    accrued = _change(ChangeKind.DAY_ACCRUED, "1103", day=LiableDay(dt.date(2024, 3, 2), 5_000))
    metrics.liability_announced(service.service, accrued)
    metrics.liability_announced(service.service, _change(ChangeKind.CORRECTED, EPISODE))
    metrics.notice_answered(service.service, "1103", "SOMATIC", 7200.0)
    metrics.notice_answered(service.service, EPISODE, NATIONAL_ID, 60.0)
    metrics.grpc_handled("/overgang.v1.PathwayService/GetPathway", "OK", 0.01)
    metrics.grpc_handled(f"/x/{EPISODE}", NATIONAL_ID, 0.01)
    service.watch_pathways(lambda: {"ADMITTED": 2, EPISODE: 1, NATIONAL_ID: 1})
    service.watch_running_clocks(lambda: {"1103": 1, NATIONAL_ID: 1, EPISODE: 1})
    service.watch_tasks(
        lambda: {
            ("1103", "HOME_CARE"): UnitTasks(1, 0, 0),
            (NATIONAL_ID, EPISODE): UnitTasks(1, 1, 1),
        }
    )


def test_no_exported_label_value_looks_like_an_id() -> None:
    service = ServiceMetrics("pathway", Metrics())
    _feed(service)
    server = service.serve("127.0.0.1:0")
    assert server is not None
    try:
        samples = scrape(server.port)
    finally:
        service.close()
    values = {value for series in samples.values() for labels in series for _, value in labels}
    fed_and_exported = {"1103", "HOME_CARE", "ADMITTED", HOSPITAL, "2024", "SOMATIC"}
    assert fed_and_exported <= values
    for pattern in LOOKS_LIKE_AN_ID:
        assert not [v for v in values if pattern.search(v)], pattern.pattern
    exported = {name for name in samples if name.startswith("overgang_")}
    fed = {"overgang_outbox_backlog_rows"}  # needs an engine: test_metrics_sources
    assert len(exported | fed) >= 20


def test_the_guard_keeps_plain_tokens_and_refuses_ids() -> None:
    for plain in ("HEALTH_OFFICE/EIGANES_TASTA", "overgang.hospital-events.v1", "2024", "OK"):
        assert label(plain) == plain
    for bad in (NATIONAL_ID, f"id {NATIONAL_ID}", "010170 12345", EPISODE, "", "x" * 101, "a b"):
        assert label(bad) == "invalid"


REASONS = {
    "processing failed: KeyError: 'x'": "processing",
    "record key is not the event's episodeId": "key",
    "key: the record key must be the episode id": "key",
    "episode's events arrive on partitions 1 and 2: producers must key by episode id": "key",
    "payload: DISCHARGED belongs on overgang.hospital-events.v1": "topic",
    "SERVICE_READY is a municipal event, not a hospital event": "topic",
    "municipality: 9999 is not served by this deployment": "rule",
    "eventId e-1 was already recorded with other content": "rule",
    "tick dated after tomorrow (Europe/Oslo)": "rule",
    "unknown due rule 'when pigs fly'": "rule",
    "occurredAt: is required (RFC 3339 timestamp with offset)": "decode",
    "not a valid overgang.v1.Event: unknown enum": "decode",
    "not a day tick: Expecting value": "decode",
    "not an overgang.v1.TaskUpdate: truncated": "decode",
    "task.taskId is required (at most 128 characters)": "decode",
    "$: is not a protobuf overgang.v1.Event": "decode",
    "$: not a protobuf overgang.v1.PathwayEvent: Wire format was corrupt": "decode",
    "needs[2]: must be one of HOME_NURSING, ...": "decode",
    "something else entirely": "other",
}


@pytest.mark.parametrize(("reason", "expected"), REASONS.items(), ids=list(REASONS.values()))
def test_reason_classes_of_the_services_reasons(reason: str, expected: str) -> None:
    assert reason_class(reason) == expected


def test_send_dead_letter_counts_by_reason_class_once_sent() -> None:
    sent: list[object] = []

    async def sink(key: bytes | None, value: bytes | None, headers: object) -> None:
        sent.append(headers)

    record = Consumed(HOSPITAL, 2, 17, EPISODE.encode(), b"{}")
    log = get_logger("test")
    with use_metrics(Metrics()) as metrics:
        reason = f"not a valid overgang.v1.Event: {NATIONAL_ID}"
        asyncio.run(send_dead_letter(sink, record, reason, "pathway", log))
        asyncio.run(send_dead_letter(sink, record, "bad", "pathway", log, kind="rule"))
        asyncio.run(send_dead_letter(sink, record, "bad", "pathway", log, kind="made-up"))
    dead = "overgang_records_dead_lettered_total"
    base = {"service": "pathway", "topic": HOSPITAL}
    assert metrics.registry.get_sample_value(dead, {**base, "reason_class": "decode"}) == 1
    assert metrics.registry.get_sample_value(dead, {**base, "reason_class": "rule"}) == 1
    assert metrics.registry.get_sample_value(dead, {**base, "reason_class": "other"}) == 1
    assert len(sent) == 3 and "other" in REASON_CLASSES


def test_a_failed_send_is_not_counted() -> None:
    async def sink(key: bytes | None, value: bytes | None, headers: object) -> None:
        raise ConnectionError("broker down")

    record = Consumed(HOSPITAL, 0, 1, None, b"")
    with use_metrics(Metrics()) as metrics, pytest.raises(ConnectionError):
        asyncio.run(send_dead_letter(sink, record, "x: y", "pathway", get_logger("t")))
    assert not [
        s
        for f in metrics.registry.collect()
        if f.name == "overgang_records_dead_lettered"
        for s in f.samples
    ]


def _liability(metrics: Metrics, name: str, year: str, municipality: str = "1103") -> float:
    labels = {"service": "discharge", "municipality": municipality, "year": year}
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_liable_days_and_nok_by_municipality_and_year_rate_pending_apart() -> None:
    metrics = Metrics()
    announce = metrics.liability_announced
    day = {"day": LiableDay(dt.date(2024, 12, 31), 5_500)}
    announce("discharge", _change(ChangeKind.DAY_ACCRUED, "1103", **day))
    pending = {"day": LiableDay(dt.date(2025, 1, 1), None)}
    announce("discharge", _change(ChangeKind.DAY_ACCRUED, "1103", **pending))
    priced = (LiableDay(dt.date(2025, 1, 1), 6_000), LiableDay(dt.date(2025, 1, 2), 6_000))
    correction = {"reversed": (LiableDay(dt.date(2025, 1, 1), None),), "added": priced}
    announce("discharge", _change(ChangeKind.CORRECTED, "1103", **correction))
    announce("discharge", _change(ChangeKind.PERIOD_STARTED, "1103"))  # no days
    assert _liability(metrics, "overgang_liable_days_total", "2024") == 1
    assert _liability(metrics, "overgang_liable_nok_total", "2024") == 5_500
    assert _liability(metrics, "overgang_liable_days_total", "2025") == 3
    assert _liability(metrics, "overgang_rate_pending_days_total", "2025") == 1
    assert _liability(metrics, "overgang_liable_nok_total", "2025") == 12_000
    assert _liability(metrics, "overgang_reversed_liable_days_total", "2025") == 1
    assert _liability(metrics, "overgang_reversed_rate_pending_days_total", "2025") == 1
    assert _liability(metrics, "overgang_reversed_liable_nok_total", "2025") == 0
    # Net: 2025 has two liable days, both priced, nothing pending.
    net_days = _liability(metrics, "overgang_liable_days_total", "2025") - _liability(
        metrics, "overgang_reversed_liable_days_total", "2025"
    )
    assert net_days == 2
    # Every family of a (municipality, year) exists from 0: dashboard subtractions match.
    labels = {"service": "discharge", "municipality": "1103", "year": "2024"}
    reversed_nok = metrics.registry.get_sample_value("overgang_reversed_liable_nok_total", labels)
    assert reversed_nok == 0
