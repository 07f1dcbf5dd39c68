"""As of means as of: a statement as of day D reflects only the events that occurred
before D began (Europe/Oslo), and counts only the days before D."""

from __future__ import annotations

import datetime as dt

from discharge.domain.statement import PeriodStatus

from .episode_story import Episode, at


def running_from_the_4th() -> Episode:
    return Episode().admission_notice(at("2024-03-01")).discharge_ready(at("2024-03-04"))


def test_service_ready_after_the_as_of_day_leaves_the_period_running() -> None:
    story = running_from_the_4th().service_ready(at("2024-03-09"))
    statement = story.statement(as_of="2024-03-07")
    assert (statement.status, statement.end, statement.liable_days) == (
        PeriodStatus.RUNNING,
        None,
        3,
    )


def test_service_ready_on_the_as_of_day_leaves_the_period_running() -> None:
    story = running_from_the_4th().service_ready(at("2024-03-07", "00:00"))
    assert story.statement(as_of="2024-03-07").status is PeriodStatus.RUNNING


def test_service_ready_just_before_the_as_of_day_began_ends_the_period() -> None:
    story = running_from_the_4th().service_ready(at("2024-03-06", "23:59"))
    assert story.statement(as_of="2024-03-07").status is PeriodStatus.ENDED


def test_the_as_of_day_begins_at_oslo_midnight_not_utc_midnight() -> None:
    # 23:30 UTC on 6 March is 00:30 on 7 March in Oslo: not seen as of the 7th.
    ready = dt.datetime(2024, 3, 6, 23, 30, tzinfo=dt.UTC)
    story = running_from_the_4th().service_ready(ready)
    assert story.statement(as_of="2024-03-07").status is PeriodStatus.RUNNING


def test_a_notice_on_the_as_of_day_is_not_seen_yet() -> None:
    statement = running_from_the_4th().statement(as_of="2024-03-04")
    assert (statement.status, statement.periods) == (PeriodStatus.NOT_STARTED, ())


def test_a_new_notice_after_the_as_of_day_opens_no_period_yet() -> None:
    story = running_from_the_4th().withdrawn(at("2024-03-06")).discharge_ready(at("2024-03-10"))
    statement = story.statement(as_of="2024-03-08")
    assert [p.status for p in statement.periods] == [PeriodStatus.ENDED]
