"""The municipality's answers carry their event time as evidence, through the clock table
and LiabilityService, and the live clock measures each period's first answer once, from
its notice, for the notice-to-answer histogram."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

from discharge.convert import period as period_proto
from discharge.domain.first_answers import new_first_answers
from discharge.domain.live_clock import ClockEntry, Rules, apply_event, apply_tick
from discharge.entry_json import entry_from_json, entry_to_json
from discharge.rules import load_profile
from overgang.events import Division
from overgang.metrics import Metrics, use_metrics

from .episode_story import RATES, Episode, at
from .test_discharge_worker import Harness, _event_record, _tick

RULES = Rules(RATES, load_profile())
HOUR = 3600.0


def answered_story() -> Episode:
    """Notice 4 March 10:00; answers 14:00 the same day and 12:00 the next."""
    story = Episode().admission_notice(at("2024-03-01")).discharge_ready(at("2024-03-04"))
    story.answer(at("2024-03-04", "14:00"), can_receive=False)
    return story.answer(at("2024-03-05", "12:00"), can_receive=True)


def test_a_period_gives_each_answer_its_event_time() -> None:
    evidence = answered_story().statement().periods[0].evidence
    assert evidence.answered_at == (at("2024-03-04", "14:00"), at("2024-03-05", "12:00"))


def test_an_answer_before_the_notice_is_no_answer_of_its_period() -> None:
    story = Episode().admission_notice(at("2024-03-01"))
    story.answer(at("2024-03-03"), can_receive=True).discharge_ready(at("2024-03-04"))
    assert story.statement().periods[0].evidence.first_answer_at is None


def test_an_answer_to_an_earlier_withdrawn_notice_is_no_answer_of_the_new_one() -> None:
    story = Episode().admission_notice(at("2024-03-01")).discharge_ready(at("2024-03-02"))
    story.answer(at("2024-03-02", "12:00"), can_receive=False).withdrawn(at("2024-03-03"))
    story.discharge_ready(at("2024-03-04")).answer(at("2024-03-06"), can_receive=True)
    assert story.statement().periods[1].evidence.answered_at == (at("2024-03-06"),)


def test_the_proto_evidence_pairs_each_answer_with_its_event_time() -> None:
    evidence = period_proto(answered_story().statement().periods[0]).evidence
    times = [(a.event_id, a.occurred_at.ToDatetime(tzinfo=dt.UTC)) for a in evidence.answer_times]
    assert times == list(
        zip(evidence.answers, [at("2024-03-04", "14:00"), at("2024-03-05", "12:00")], strict=True)
    )


def test_answer_times_survive_the_clock_table() -> None:
    story = answered_story()
    entry = ClockEntry(story.episode_id, 0, dt.date(2024, 3, 10), tuple(story.events))
    entry = dataclasses.replace(entry, announced=story.statement("2024-03-10"))
    assert entry_from_json(entry_to_json(entry)) == entry


def test_a_clock_stored_before_answer_times_gets_them_from_its_own_history() -> None:
    story = answered_story()
    entry = ClockEntry(story.episode_id, 0, dt.date(2024, 3, 10), tuple(story.events))
    entry = dataclasses.replace(entry, announced=story.statement("2024-03-10"))
    stored = entry_to_json(entry)
    for period in stored["announced"]["periods"]:
        del period["evidence"]["answered_at"]  # the stored form of the previous version
    assert entry_from_json(stored) == entry


def test_the_first_answer_is_measured_from_the_notice_in_event_time() -> None:
    story = answered_story()
    [first] = new_first_answers(None, story.statement(), story.events)
    assert (first.municipality, first.division, first.seconds) == (
        "1103",
        Division.SOMATIC,
        4 * HOUR,
    )


def test_a_period_without_an_answer_is_not_measured() -> None:
    story = Episode().admission_notice(at("2024-03-01")).discharge_ready(at("2024-03-04"))
    assert new_first_answers(None, story.statement(), story.events) == []


def test_a_period_whose_first_answer_was_already_measured_is_not_measured_again() -> None:
    story = answered_story()
    seen = Episode().admission_notice(at("2024-03-01")).discharge_ready(at("2024-03-04"))
    seen.events[:] = story.events[:3]  # the same notice, with its first answer only
    assert new_first_answers(seen.statement(), story.statement(), story.events) == []


def test_the_first_answer_counts_once_its_day_is_over() -> None:
    story = answered_story()
    entry = ClockEntry(story.episode_id, 0, dt.date(2024, 3, 4))
    for event in story.events[:3]:  # the notice and the first answer, on 4 March
        outcome = apply_event(entry, event, RULES)
        entry = outcome.entry
    assert outcome.answered == []  # as of 4 March: the answer of the 4th is not seen yet
    ticked = apply_tick(entry, dt.date(2024, 3, 5), RULES)
    assert [a.seconds for a in ticked.answered] == [4 * HOUR]


def test_the_worker_observes_each_periods_first_answer_once() -> None:
    story = answered_story()
    harness = Harness()  # the services' clock: 10 March, so every event is seen at once
    with use_metrics(Metrics()) as metrics:
        for event in [*story.events, story.events[2]]:  # the first answer redelivered
            asyncio.run(harness.worker.handle(_event_record(event)))
        asyncio.run(harness.worker.handle(_tick("2024-03-11")))
    labels = {"service": "discharge", "municipality": "1103", "division": "SOMATIC"}
    name = "overgang_notice_to_answer_seconds"
    assert metrics.registry.get_sample_value(f"{name}_count", labels) == 1
    assert metrics.registry.get_sample_value(f"{name}_sum", labels) == 4 * HOUR
