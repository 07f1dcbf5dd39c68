"""Issue 8 item 7 (and the repeated-field cap of item 8): event times far in the past are
refused with the field and the rule, by bounds that are profile data; at SubmitHospitalEvent
they are INVALID_ARGUMENT among the request's other violations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from overgang.events import Division, EpisodeEvent, EventKind
from overgang.grpc.errors import field_violations
from overgang.kafka.topics import MUNICIPAL_EVENTS
from overgang.plausibility import (
    MAX_NEEDS,
    PlausibilityConfigError,
    Windows,
    describe,
    event_violations,
    load_windows,
)
from overgang.v1 import coordination_pb2, events_pb2, pathway_pb2_grpc

from .test_coordination_grpc import NOW as COORDINATION_NOW
from .test_coordination_grpc import OPS, Harness, run
from .test_pathway_grpc import HER, Server, error_of, event, ready_event, submit

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
WINDOWS = load_windows()
DAY = dt.timedelta(days=1)


def notice(at: dt.datetime, ready_at: dt.datetime | None = None) -> EpisodeEvent:
    return EpisodeEvent(
        event_id="ev-1",
        episode_id=f"{HER}:E1",
        occurred_at=at,
        municipality="1103",
        division=Division.SOMATIC,
        kind=EventKind.DISCHARGE_READY_NOTIFIED,
        ready_at=ready_at or at,
    )


# ------------------------------------------------------------------ the pure check
def test_the_built_in_windows_are_the_files() -> None:
    assert (WINDOWS.max_age, WINDOWS.max_before_first_event, WINDOWS.max_ready_before_notice) == (
        60 * DAY,
        7 * DAY,
        7 * DAY,
    )


def test_an_event_inside_every_window_is_plausible() -> None:
    at = NOW - 59 * DAY
    assert event_violations(notice(at), now=NOW, windows=WINDOWS, first_event_at=at) == []


def test_an_event_long_before_now_is_implausible() -> None:
    found = event_violations(notice(NOW - 61 * DAY), now=NOW, windows=WINDOWS)
    assert found == [("occurredAt", "is more than 60 days before now")]


def test_an_event_long_before_the_episodes_first_event_is_implausible() -> None:
    found = event_violations(
        notice(NOW - 9 * DAY), now=NOW, windows=WINDOWS, first_event_at=NOW - DAY
    )
    assert found == [("occurredAt", "is more than 7 days before the episode's first event")]


def test_a_ready_at_long_before_the_notice_is_implausible() -> None:
    found = event_violations(notice(NOW, ready_at=NOW - 8 * DAY), now=NOW, windows=WINDOWS)
    assert describe(found) == (
        "dischargeReadyNotified.readyAt: is more than 7 days before the notice"
    )


def test_the_caller_names_its_own_time_field() -> None:
    found = event_violations(
        notice(NOW - 61 * DAY), now=NOW, windows=WINDOWS, occurred_field="answeredAt"
    )
    assert [f for f, _ in found] == ["answeredAt"]


def test_windows_come_from_the_deployments_file(tmp_path: Path) -> None:
    path = tmp_path / "windows.toml"
    path.write_text(
        "[windows]\nmax_age_days = 3\nmax_before_first_event_days = 1\n"
        "max_ready_before_notice_days = 2\n"
    )
    windows = load_windows(path)
    assert (windows, event_violations(notice(NOW - 4 * DAY), now=NOW, windows=windows)) == (
        Windows(3 * DAY, DAY, 2 * DAY, source=str(path)),
        [("occurredAt", "is more than 3 days before now")],
    )


@pytest.mark.parametrize(
    "body",
    [
        "[windows]\nmax_age_days = 3\n",
        "[windows]\nmax_age_days = 0\nmax_before_first_event_days = 1\n"
        "max_ready_before_notice_days = 1\n",
        '[windows]\nmax_age_days = "3"\nmax_before_first_event_days = 1\n'
        "max_ready_before_notice_days = 1\n",
        "windows = [",
    ],
)
def test_a_bad_windows_file_is_a_configuration_error(tmp_path: Path, body: str) -> None:
    path = tmp_path / "windows.toml"
    path.write_text(body)
    with pytest.raises(PlausibilityConfigError, match="windows"):
        load_windows(path)


# --------------------------------------------------------------- SubmitHospitalEvent
@pytest.fixture
def stub(tmp_path: Path) -> Iterator[pathway_pb2_grpc.PathwayServiceStub]:
    with (
        Server(tmp_path) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.runtime.port}") as channel,
    ):
        yield pathway_pb2_grpc.PathwayServiceStub(channel)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def test_a_backdated_event_is_invalid_with_the_field_and_the_reason(stub: Any) -> None:
    error = error_of(lambda: submit(stub, event(occurred_at=now() - 61 * DAY)))
    assert (error.code(), field_violations(error)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        [("event.occurredAt", "is more than 60 days before now")],
    )


def test_an_event_long_before_the_episodes_first_event_is_invalid(stub: Any) -> None:
    submit(stub, event(occurred_at=now() - DAY))
    early = ready_event(occurred_at=now() - 9 * DAY)
    error = error_of(lambda: submit(stub, early, national_id=""))
    assert field_violations(error) == [
        ("event.occurredAt", "is more than 7 days before the episode's first event")
    ]


def test_an_absurdly_early_ready_at_is_invalid(stub: Any) -> None:
    submit(stub, event())
    msg = ready_event()
    msg.discharge_ready_notified.ready_at.FromDatetime(now() - 30 * DAY)
    error = error_of(lambda: submit(stub, msg, national_id=""))
    assert field_violations(error) == [
        ("event.dischargeReadyNotified.readyAt", "is more than 7 days before the notice")
    ]


def test_a_backdated_event_is_reported_with_the_other_violations(stub: Any) -> None:
    msg = event(occurred_at=now() - 61 * DAY, municipality="9999")
    error = error_of(lambda: submit(stub, msg, national_id="123"))
    assert sorted(f for f, _ in field_violations(error)) == [
        "event.municipality",
        "event.occurredAt",
        "nationalId",
    ]


@pytest.mark.parametrize(
    ("kind", "repeated", "path"),
    [
        ("admission_notified", "expected_needs", "admissionNotified.expectedNeeds"),
        ("discharge_ready_notified", "needs", "dischargeReadyNotified.needs"),
    ],
)
def test_more_needs_than_the_cap_is_one_field_violation(
    stub: Any, kind: str, repeated: str, path: str
) -> None:
    submit(stub, event())
    msg = ready_event() if kind == "discharge_ready_notified" else event(kind=kind)
    getattr(getattr(msg, kind), repeated).extend([events_pb2.HOME_NURSING] * (MAX_NEEDS + 1))
    error = error_of(lambda: submit(stub, msg, national_id=""))
    assert field_violations(error) == [(f"event.{path}", f"has more than {MAX_NEEDS} entries")]


def test_a_huge_needs_list_is_refused_quickly(stub: Any) -> None:
    submit(stub, event())
    msg = ready_event()
    msg.discharge_ready_notified.needs.extend([events_pb2.HOME_NURSING] * 400_000)
    started = dt.datetime.now()
    error = error_of(lambda: submit(stub, msg, national_id=""))
    elapsed = dt.datetime.now() - started
    assert (error.code(), elapsed < dt.timedelta(seconds=2)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        True,
    )


# ------------------------------------------------------ AnswerHospital / ReportServiceReady
def _answer_at(at: dt.datetime) -> coordination_pb2.AnswerHospitalRequest:
    request = coordination_pb2.AnswerHospitalRequest(episode_id="70001:a", can_receive=True)
    request.answered_at.FromDatetime(at.astimezone(dt.UTC))
    return request


def _ready_at(at: dt.datetime) -> coordination_pb2.ReportServiceReadyRequest:
    request = coordination_pb2.ReportServiceReadyRequest(episode_id="70001:a")
    request.ready_at.FromDatetime(at.astimezone(dt.UTC))
    return request


async def _violations(call: Any) -> tuple[grpc.StatusCode, list[tuple[str, str]]]:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value.code(), field_violations(refused.value)


def test_a_backdated_answer_is_invalid(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.notice("70001:a")
        call = h.stub.AnswerHospital(_answer_at(COORDINATION_NOW - 61 * DAY), metadata=OPS)
        assert await _violations(call) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            [("answeredAt", "is more than 60 days before now")],
        )

    run(tmp_path, scenario)


def test_service_ready_long_before_the_episodes_first_task_trigger_is_invalid(
    tmp_path: Path,
) -> None:
    async def scenario(h: Harness) -> None:
        await h.notice("70001:a")  # the notice at COORDINATION_NOW triggers the first task
        call = h.stub.ReportServiceReady(_ready_at(COORDINATION_NOW - 8 * DAY), metadata=OPS)
        assert await _violations(call) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            [("readyAt", "is more than 7 days before the episode's first event")],
        )
        assert h.outbox(MUNICIPAL_EVENTS) == []

    run(tmp_path, scenario)


def test_service_ready_inside_the_windows_is_accepted(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.notice("70001:a")
        await h.stub.ReportServiceReady(_ready_at(COORDINATION_NOW - 6 * DAY), metadata=OPS)
        assert len(h.outbox(MUNICIPAL_EVENTS)) == 1

    run(tmp_path, scenario)
