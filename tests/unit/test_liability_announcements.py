"""What the live clock announces as time passes and events arrive."""

from __future__ import annotations

import datetime as dt

from discharge.domain.liability_diff import ChangeKind, liability_diff

from .episode_story import Episode, at


def story() -> Episode:
    return Episode().admission_notice(at("2024-03-01")).discharge_ready(at("2024-03-04"))


def test_a_notice_on_the_current_day_announces_nothing_before_the_day_is_over() -> None:
    # As of day D the statement reflects only events before D began (Oslo time).
    changes = liability_diff(None, story().statement(as_of="2024-03-04"), "notice")
    assert changes == []


def test_the_next_midnight_announces_the_started_period_and_its_first_day() -> None:
    episode = story()
    changes = liability_diff(
        episode.statement(as_of="2024-03-04"), episode.statement(as_of="2024-03-05"), None
    )
    assert [(c.kind, c.event_id) for c in changes] == [
        (
            ChangeKind.PERIOD_STARTED,
            f"81234:E1:{episode.events[-1].event_id}:period_started:tick-2024-03-05",
        ),
        (ChangeKind.DAY_ACCRUED, "81234:E1:day:2024-03-04"),
    ]


def test_the_midnight_tick_accrues_the_day_that_just_ended() -> None:
    episode = story()
    changes = liability_diff(
        episode.statement(as_of="2024-03-05"), episode.statement(as_of="2024-03-06"), None
    )
    assert [(c.kind, c.event_id) for c in changes] == [
        (ChangeKind.DAY_ACCRUED, "81234:E1:day:2024-03-05")
    ]


def test_a_tick_after_downtime_accrues_every_missed_day() -> None:
    episode = story()
    changes = liability_diff(
        episode.statement(as_of="2024-03-05"), episode.statement(as_of="2024-03-08"), None
    )
    assert [c.day.date.day for c in changes if c.day] == [5, 6, 7]


def test_a_late_event_is_announced_as_a_correction_reversing_days() -> None:
    episode = story()
    before = episode.statement(as_of="2024-03-08")
    episode.service_ready(at("2024-03-06"))
    changes = liability_diff(before, episode.statement(as_of="2024-03-08"), "late")
    correction = next(c for c in changes if c.kind is ChangeKind.CORRECTED)
    assert ([d.date for d in correction.reversed], correction.delta_nok) == (
        [dt.date(2024, 3, 6), dt.date(2024, 3, 7)],
        -2 * 5_745,
    )


def test_an_end_event_on_the_current_day_is_announced_at_midnight_without_correction() -> None:
    episode = story()
    before = episode.statement(as_of="2024-03-06")
    episode.service_ready(at("2024-03-06"))
    changes = liability_diff(before, episode.statement(as_of="2024-03-07"), None)
    assert [c.kind for c in changes] == [ChangeKind.PERIOD_ENDED]


def test_a_late_admission_notice_un_voids_the_period_with_a_correction() -> None:
    episode = Episode().discharge_ready(at("2024-03-04", "09:00"))
    before = episode.statement(as_of="2024-03-06")
    episode.admission_notice(at("2024-03-04", "08:00"))  # sent earlier, delivered late
    changes = liability_diff(before, episode.statement(as_of="2024-03-06"), "adm")
    assert [c.kind for c in changes] == [ChangeKind.PERIOD_STARTED, ChangeKind.CORRECTED]


def test_announcing_the_same_difference_twice_gives_the_same_ids() -> None:
    episode = story()
    before, after = episode.statement(as_of="2024-03-04"), episode.statement(as_of="2024-03-06")
    first = [c.event_id for c in liability_diff(before, after, None)]
    assert first == [c.event_id for c in liability_diff(before, after, None)]
