"""One scenario per rule of the liability clock (domain.md, profile no-2019)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from discharge.domain.clock import EndCause, PeriodStatus, VoidReason
from discharge.domain.profile import NO_2019, LateAdmissionNotice
from overgang.events import Division

from .episode_story import Episode, at, days


def admitted_with_notice(**kwargs: object) -> Episode:
    return Episode(**kwargs).admission_notice(at("2024-03-01", "08:00"))  # type: ignore[arg-type]


# Rule 1: start on the Oslo day when both the declaration and the notice hold; day 1 counts.


def test_ministry_example_notice_on_day_0_service_ready_on_day_3_gives_3_days() -> None:
    story = (
        Episode()
        .admission_notice(at("2012-05-01", "08:00"))
        .discharge_ready(at("2012-05-02"))
        .service_ready(at("2012-05-05"))
    )
    statement = story.statement()
    assert (statement.liable_days, statement.amount_nok) == (3, 12_000)


def test_liability_starts_on_the_notice_day_when_declared_earlier() -> None:
    story = admitted_with_notice().discharge_ready(
        at("2024-03-05", "09:00"), declared=at("2024-03-04", "15:00")
    )
    assert story.statement().start == dt.date(2024, 3, 5)


def test_liability_starts_on_the_declaration_day_when_notice_is_sent_in_advance() -> None:
    story = admitted_with_notice().discharge_ready(
        at("2024-03-05", "09:00"), declared=at("2024-03-07", "08:00")
    )
    assert story.statement().start == dt.date(2024, 3, 7)


def test_start_day_is_the_oslo_calendar_day_not_the_utc_day() -> None:
    # 23:30 UTC on 3 March is 00:30 on 4 March in Oslo (CET).
    notice = dt.datetime(2024, 3, 3, 23, 30, tzinfo=dt.UTC)
    story = admitted_with_notice().discharge_ready(notice)
    assert story.statement().start == dt.date(2024, 3, 4)


def test_start_day_follows_oslo_summer_time() -> None:
    # 22:30 UTC on 1 July is 00:30 on 2 July in Oslo (CEST).
    notice = dt.datetime(2024, 7, 1, 22, 30, tzinfo=dt.UTC)
    story = admitted_with_notice().discharge_ready(notice)
    assert story.statement().start == dt.date(2024, 7, 2)


# Rule 2: liable while the municipality cannot receive or has not answered.


def test_unanswered_notice_is_liable_every_day() -> None:
    story = admitted_with_notice().discharge_ready(at("2024-03-04")).discharged(at("2024-03-08"))
    assert days(story.statement()) == ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07"]


def test_cannot_receive_keeps_the_clock_running() -> None:
    story = (
        admitted_with_notice()
        .discharge_ready(at("2024-03-04"))
        .answer(at("2024-03-04", "14:00"), can_receive=False, expected="2024-03-06")
        .service_ready(at("2024-03-06"))
    )
    assert story.statement().liable_days == 2


def test_can_receive_on_the_start_day_owes_nothing() -> None:
    story = (
        admitted_with_notice()
        .discharge_ready(at("2024-03-04"))
        .answer(at("2024-03-04", "14:00"), can_receive=True)
        .discharged(at("2024-03-09"))
    )
    assert story.statement().liable_days == 0


def test_can_receive_later_stops_liability_from_the_answer_day() -> None:
    story = (
        admitted_with_notice()
        .discharge_ready(at("2024-03-04"))
        .answer(at("2024-03-06", "11:00"), can_receive=True)
        .discharged(at("2024-03-09"))
    )
    assert days(story.statement()) == ["2024-03-04", "2024-03-05"]


def test_reversal_to_cannot_receive_makes_days_liable_again() -> None:
    story = (
        admitted_with_notice()
        .discharge_ready(at("2024-03-04"))
        .answer(at("2024-03-04", "11:00"), can_receive=True)
        .answer(at("2024-03-06", "11:00"), can_receive=False, expected="2024-03-08")
        .service_ready(at("2024-03-08"))
    )
    assert days(story.statement()) == ["2024-03-06", "2024-03-07"]


# Rule 3: the end day (service ready, discharge, withdrawal, death) is not billed.


@pytest.mark.parametrize(
    ("end", "cause"),
    [
        (lambda e, t: e.service_ready(t), EndCause.SERVICE_READY),
        (lambda e, t: e.discharged(t), EndCause.DISCHARGED),
        (lambda e, t: e.withdrawn(t), EndCause.WITHDRAWN),
        (lambda e, t: e.died(t), EndCause.DIED),
    ],
)
def test_end_day_is_not_billed(end: object, cause: EndCause) -> None:
    story = admitted_with_notice().discharge_ready(at("2024-03-04"))
    end(story, at("2024-03-07", "07:00"))  # type: ignore[operator]
    statement = story.statement()
    assert (days(statement)[-1], statement.periods[0].end_cause) == ("2024-03-06", cause)


def test_days_before_a_withdrawal_stay_payable_and_a_new_notice_starts_a_new_period() -> None:
    story = (
        admitted_with_notice()
        .discharge_ready(at("2024-03-04"))
        .withdrawn(at("2024-03-06"))
        .discharge_ready(at("2024-03-10"))
        .service_ready(at("2024-03-11"))
    )
    statement = story.statement()
    assert [
        (p.start.day, p.end.day if p.end else None, p.liable_days) for p in statement.periods
    ] == [
        (4, 6, 2),
        (10, 11, 1),
    ]


def test_running_period_counts_complete_days_before_as_of() -> None:
    story = admitted_with_notice().discharge_ready(at("2024-03-04"))
    statement = story.statement(as_of="2024-03-07")
    assert (statement.status, statement.liable_days) == (PeriodStatus.RUNNING, 3)


def test_repeated_notice_while_one_is_in_force_opens_no_new_period() -> None:
    story = (
        admitted_with_notice()
        .discharge_ready(at("2024-03-04"))
        .discharge_ready(at("2024-03-05"))
        .discharged(at("2024-03-06"))
    )
    assert len(story.statement().periods) == 1


def test_end_before_the_declared_ready_day_gives_no_days() -> None:
    story = (
        admitted_with_notice()
        .discharge_ready(at("2024-03-04"), declared=at("2024-03-06"))
        .discharged(at("2024-03-05"))
    )
    assert (story.statement().status, story.statement().liable_days) == (PeriodStatus.ENDED, 0)


# Rule 4: missing preconditions void the period, with the reason kept.


def test_no_admission_notice_voids_the_period_with_the_reason() -> None:
    story = Episode().discharge_ready(at("2024-03-04")).discharged(at("2024-03-08"))
    statement = story.statement()
    assert (statement.status, statement.void_reason, statement.liable_days) == (
        PeriodStatus.VOID,
        VoidReason.MISSING_ADMISSION_NOTICE,
        0,
    )


def test_late_admission_notice_voids_under_the_default_profile() -> None:
    story = (
        Episode()
        .discharge_ready(at("2024-03-04", "09:00"))
        .admission_notice(at("2024-03-05"))
        .discharged(at("2024-03-08"))
    )
    assert story.statement().void_reason is VoidReason.MISSING_ADMISSION_NOTICE


def test_late_admission_notice_only_delays_under_the_delay_profile() -> None:
    delay = dataclasses.replace(NO_2019, late_admission_notice=LateAdmissionNotice.DELAY)
    story = (
        Episode()
        .discharge_ready(at("2024-03-04", "09:00"))
        .admission_notice(at("2024-03-05"))
        .discharged(at("2024-03-08"))
    )
    assert days(story.statement(profile=delay)) == ["2024-03-05", "2024-03-06", "2024-03-07"]


def test_admission_notice_at_the_same_instant_counts_as_sent_before() -> None:
    instant = at("2024-03-04", "09:00")
    story = (
        Episode().discharge_ready(instant).admission_notice(instant).discharged(at("2024-03-05"))
    )
    assert story.statement().liable_days == 1


# Rule 5: amount = sum of each liable day's rate for that day's year.


def test_amount_uses_each_days_own_year_rate_across_new_year() -> None:
    story = (
        Episode()
        .admission_notice(at("2023-12-28"))
        .discharge_ready(at("2023-12-30"))
        .service_ready(at("2024-01-02"))
    )
    # 30 and 31 December 2023 at 5 508, 1 January 2024 at 5 745.
    assert story.statement().amount_nok == 2 * 5_508 + 5_745


def test_a_liable_day_in_a_year_without_a_rate_counts_as_rate_pending() -> None:
    story = Episode().admission_notice(at("2013-03-01")).discharge_ready(at("2013-03-04"))
    statement = story.statement(as_of="2013-03-10")
    assert (statement.liable_days, statement.pending_days, statement.amount_nok) == (6, 6, 0)


def test_a_year_without_a_rate_leaves_nothing_pending_when_no_day_is_liable() -> None:
    story = (
        Episode()
        .admission_notice(at("2013-03-01"))
        .discharge_ready(at("2013-03-04"))
        .answer(at("2013-03-04", "12:00"), can_receive=True)
        .discharged(at("2013-03-05"))
    )
    assert (story.statement().amount_nok, story.statement().pending_days) == (0, 0)


# Rule 6: the payer is the municipality of stay; psychiatry and TSB use the same rate.


def test_payer_is_the_municipality_on_the_notice() -> None:
    story = (
        Episode(municipality="1103")
        .admission_notice(at("2024-03-01"))
        .discharge_ready(at("2024-03-04"), municipality="1108")
        .discharged(at("2024-03-05"))
    )
    assert story.statement().municipality == "1108"


@pytest.mark.parametrize("division", [Division.MENTAL_HEALTH, Division.SUBSTANCE_USE])
def test_mental_health_and_tsb_use_the_same_daily_rate(division: Division) -> None:
    story = (
        admitted_with_notice(division=division)
        .discharge_ready(at("2024-03-04"))
        .discharged(at("2024-03-05"))
    )
    assert story.statement().amount_nok == 5_745


def test_cooperation_meeting_profile_voids_mental_health_period_without_a_meeting() -> None:
    profile = dataclasses.replace(
        NO_2019, cooperation_meeting_required_for=frozenset({Division.MENTAL_HEALTH})
    )
    story = (
        admitted_with_notice(division=Division.MENTAL_HEALTH)
        .discharge_ready(at("2024-03-04"))
        .discharged(at("2024-03-08"))
    )
    assert story.statement(profile=profile).void_reason is VoidReason.MISSING_COOPERATION_MEETING


def test_cooperation_meeting_profile_starts_liability_on_the_meeting_day() -> None:
    profile = dataclasses.replace(
        NO_2019, cooperation_meeting_required_for=frozenset({Division.MENTAL_HEALTH})
    )
    story = (
        admitted_with_notice(division=Division.MENTAL_HEALTH)
        .discharge_ready(at("2024-03-04"))
        .cooperation_meeting(at("2024-03-06"))
        .discharged(at("2024-03-08"))
    )
    assert days(story.statement(profile=profile)) == ["2024-03-06", "2024-03-07"]


def test_cooperation_meeting_profile_does_not_touch_somatic_patients() -> None:
    profile = dataclasses.replace(
        NO_2019, cooperation_meeting_required_for=frozenset({Division.MENTAL_HEALTH})
    )
    story = admitted_with_notice().discharge_ready(at("2024-03-04")).discharged(at("2024-03-06"))
    assert story.statement(profile=profile).liable_days == 2


# Rule 7: a late event with an earlier event time changes the result retroactively.


def test_late_service_ready_with_earlier_event_time_shortens_the_period() -> None:
    story = admitted_with_notice().discharge_ready(at("2024-03-04"))
    before = story.statement(as_of="2024-03-10").liable_days
    story.service_ready(at("2024-03-06"))  # arrives on the 10th, happened on the 6th
    after = story.statement(as_of="2024-03-10").liable_days
    assert (before, after) == (6, 2)


def test_duplicate_events_count_once() -> None:
    story = admitted_with_notice().discharge_ready(at("2024-03-04")).discharged(at("2024-03-06"))
    story.events.extend(story.events)
    assert story.statement().liable_days == 2
