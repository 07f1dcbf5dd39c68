"""Same-instant order: events at one instant are ordered by `EventKind`'s declaration
order (the table next to the enum), causes before effects, in the clock and in the
pathway fold alike. One pair per test."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from discharge.domain.profile import NO_2019
from discharge.domain.statement import EndCause, PeriodStatus
from overgang.events import Destination, Division, EventKind
from overgang.vocabulary import Stage
from pathway.domain.state_machine import fold

from .episode_story import Episode, at

INSTANT = at("2024-03-08", "10:00")


def admitted_and_noticed(division: Division = Division.SOMATIC) -> Episode:
    return (
        Episode(division=division)
        .admitted(at("2024-03-01", "07:00"))
        .admission_notice(at("2024-03-01", "08:00"))
        .discharge_ready(at("2024-03-04"))
    )


def test_withdrawal_and_new_notice_at_one_instant_end_the_old_period_and_open_a_new_one() -> None:
    story = admitted_and_noticed().withdrawn(INSTANT).discharge_ready(INSTANT)
    statement = story.statement(as_of="2024-03-10")
    assert [(p.status, p.start.day, p.liable_days) for p in statement.periods] == [
        (PeriodStatus.ENDED, 4, 4),
        (PeriodStatus.RUNNING, 8, 2),
    ]


def test_withdrawal_and_new_notice_at_one_instant_fold_back_to_discharge_ready() -> None:
    story = admitted_and_noticed().withdrawn(INSTANT).discharge_ready(INSTANT)
    result = fold(reversed(story.events))
    assert (result.stage, result.rejected) == (Stage.DISCHARGE_READY, ())


def test_an_answer_at_the_instant_of_a_withdrawal_and_new_notice_answers_the_new_notice() -> None:
    story = (
        admitted_and_noticed()
        .answer(INSTANT, can_receive=True)
        .discharge_ready(INSTANT)
        .withdrawn(INSTANT)
    )
    statement = story.statement(as_of="2024-03-12")
    assert [(p.liable_days, len(p.evidence.answers)) for p in statement.periods] == [
        (4, 0),
        (0, 1),
    ]


def test_cooperation_meeting_at_the_instant_of_the_notice_counts_as_held_before() -> None:
    profile = dataclasses.replace(
        NO_2019, cooperation_meeting_required_for=frozenset({Division.MENTAL_HEALTH})
    )
    story = (
        Episode(division=Division.MENTAL_HEALTH)
        .admission_notice(at("2024-03-01"))
        .discharge_ready(INSTANT)
        .cooperation_meeting(INSTANT)
    )
    assert story.statement(as_of="2024-03-10", profile=profile).liable_days == 2


def test_can_receive_at_the_instant_of_the_notice_owes_nothing() -> None:
    story = (
        Episode()
        .admission_notice(at("2024-03-01"))
        .answer(INSTANT, can_receive=True)
        .discharge_ready(INSTANT)
    )
    assert story.statement(as_of="2024-03-12").liable_days == 0


@pytest.mark.parametrize(
    ("end", "cause"),
    [
        (lambda e: e.service_ready(INSTANT), EndCause.SERVICE_READY),
        (lambda e: e.discharged(INSTANT), EndCause.DISCHARGED),
        (lambda e: e.died(INSTANT), EndCause.DIED),
    ],
    ids=["service-ready", "discharged", "died"],
)
def test_an_end_at_the_instant_of_the_notice_ends_that_period_with_no_days(
    end: object, cause: EndCause
) -> None:
    story = Episode().admission_notice(at("2024-03-01"))
    end(story)  # type: ignore[operator]
    story.discharge_ready(INSTANT)
    statement = story.statement(as_of="2024-03-12")
    assert [(p.status, p.end_cause, p.liable_days) for p in statement.periods] == [
        (PeriodStatus.ENDED, cause, 0)
    ]


def test_a_death_at_the_instant_of_the_notice_is_no_notice_after_death() -> None:
    story = Episode().admission_notice(at("2024-03-01")).died(INSTANT).discharge_ready(INSTANT)
    assert story.statement(as_of="2024-03-12").conflicts == ()


def test_service_ready_and_discharge_at_one_instant_end_as_service_ready() -> None:
    story = admitted_and_noticed().discharged(INSTANT).service_ready(INSTANT)
    assert story.statement().periods[0].end_cause is EndCause.SERVICE_READY


def test_discharge_and_death_at_one_instant_end_as_discharged() -> None:
    story = admitted_and_noticed().died(INSTANT).discharged(INSTANT, to=Destination.OTHER)
    assert story.statement().periods[0].end_cause is EndCause.DISCHARGED


def test_withdrawal_and_service_ready_at_one_instant_end_as_withdrawn() -> None:
    story = admitted_and_noticed().service_ready(INSTANT).withdrawn(INSTANT)
    assert story.statement().periods[0].end_cause is EndCause.WITHDRAWN


def test_admission_and_notice_at_one_instant_fold_to_discharge_ready() -> None:
    story = Episode().discharge_ready(INSTANT).admission_notice(INSTANT).admitted(INSTANT)
    result = fold(story.events)
    assert (result.stage, result.rejected) == (Stage.DISCHARGE_READY, ())


_ADD = {
    EventKind.ADMITTED: lambda e: e.admitted(INSTANT),
    EventKind.ADMISSION_NOTIFIED: lambda e: e.admission_notice(INSTANT),
    EventKind.COOPERATION_MEETING_HELD: lambda e: e.cooperation_meeting(INSTANT),
    EventKind.DISCHARGE_READY_WITHDRAWN: lambda e: e.withdrawn(INSTANT),
    EventKind.DISCHARGE_READY_NOTIFIED: lambda e: e.discharge_ready(INSTANT),
    EventKind.MUNICIPALITY_ANSWERED: lambda e: e.answer(INSTANT, can_receive=False),
    EventKind.SERVICE_READY: lambda e: e.service_ready(INSTANT),
    EventKind.DISCHARGED: lambda e: e.discharged(INSTANT),
    EventKind.DIED: lambda e: e.died(INSTANT),
}


@pytest.mark.parametrize(
    ("first", "second"),
    list(itertools.combinations(EventKind, 2)),
    ids=lambda k: k.value,
)
def test_two_kinds_at_one_instant_give_one_statement_whatever_the_arrival_order(
    first: EventKind, second: EventKind
) -> None:
    story = admitted_and_noticed()
    _ADD[first](story)
    _ADD[second](story)
    forward = story.statement(as_of="2024-03-12")
    story.events[-2:] = reversed(story.events[-2:])
    assert story.statement(as_of="2024-03-12") == forward
