"""The statement is evidence: each period names the events that started, ended and
voided it, the answers that applied, and never starts after its end; conflicting
duplicates are part of the episode's result."""

from __future__ import annotations

import dataclasses
import datetime as dt

from discharge.domain.statement import ConflictKind

from .episode_story import Episode, at


def ids(story: Episode) -> list[str]:
    return [e.event_id for e in story.events]


def test_a_period_names_the_notice_that_started_it_and_the_event_that_ended_it() -> None:
    story = Episode().admission_notice(at("2024-03-01")).discharge_ready(at("2024-03-04"))
    story.service_ready(at("2024-03-06"))
    evidence = story.statement().periods[0].evidence
    assert (evidence.admission_notice, evidence.started_by, evidence.ended_by) == tuple(ids(story))


def test_a_period_voided_by_a_late_admission_notice_names_it() -> None:
    story = Episode().discharge_ready(at("2024-03-04", "09:00"))
    story.admission_notice(at("2024-03-05")).discharged(at("2024-03-08"))
    assert story.statement().periods[0].evidence.voided_by == ids(story)[1]


def test_a_period_voided_by_a_missing_admission_notice_names_no_event() -> None:
    story = Episode().discharge_ready(at("2024-03-04")).discharged(at("2024-03-08"))
    assert story.statement().periods[0].evidence.voided_by is None


def test_a_period_lists_the_answers_that_applied() -> None:
    story = Episode().admission_notice(at("2024-03-01")).discharge_ready(at("2024-03-04"))
    story.answer(at("2024-03-04", "12:00"), can_receive=True)
    story.answer(at("2024-03-05", "12:00"), can_receive=False)
    assert story.statement().periods[0].evidence.answers == tuple(ids(story)[2:])


def test_a_period_lists_the_repeated_notices_it_absorbed() -> None:
    story = Episode().admission_notice(at("2024-03-01")).discharge_ready(at("2024-03-04"))
    story.discharge_ready(at("2024-03-05"))
    assert story.statement().periods[0].evidence.updates == (ids(story)[2],)


def test_a_period_that_ended_before_its_declared_ready_day_starts_on_its_end_day() -> None:
    story = (
        Episode()
        .admission_notice(at("2024-03-01"))
        .discharge_ready(at("2024-03-04"), declared=at("2024-03-06"))
        .discharged(at("2024-03-05"))
    )
    period = story.statement().periods[0]
    assert (period.start, period.end, period.liable_days) == (
        dt.date(2024, 3, 5),
        dt.date(2024, 3, 5),
        0,
    )


def conflicting() -> Episode:
    story = Episode().admission_notice(at("2024-03-01")).discharge_ready(at("2024-03-04"))
    ready = story.service_ready(at("2024-03-06")).events[-1]
    story.events.append(dataclasses.replace(ready, occurred_at=at("2024-03-08")))
    return story


def test_a_conflicting_duplicate_is_part_of_the_episodes_result() -> None:
    story = conflicting()
    [conflict] = story.statement().conflicts
    assert (conflict.kind, conflict.event_id) == (
        ConflictKind.DUPLICATE_EVENT_ID,
        story.events[-1].event_id,
    )


def test_conflicts_do_not_depend_on_arrival_order_or_repeats() -> None:
    story = conflicting()
    before = story.statement()
    story.events[:] = [*reversed(story.events), story.events[-1], story.events[-2]]
    assert story.statement() == before
