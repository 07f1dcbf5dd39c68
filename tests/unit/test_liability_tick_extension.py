"""A tick extends the announced statement instead of recomputing the history
(`discharge.domain.extension`): whatever it gives must be exactly what `compute_statement`
gives for the same events as of the new day. Checked day by day over simulated months
(Oslo DST days in March and October, the turn of a rate year, a year without a rate, a
division's coverage start) under two rule profiles, and over generated histories with
days skipped between ticks."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from discharge.domain.clock import compute_statement
from discharge.domain.extension import extended
from discharge.domain.live_clock import ClockEntry, Rules, apply_event, apply_tick
from discharge.domain.profile import NO_2019, LateAdmissionNotice, RuleProfile
from discharge.domain.rates import RateTable
from discharge.rules import load_rates
from overgang.events import OSLO, Division, EpisodeEvent, EventKind
from tooling.simulation import SimulatedEpisode, simulate_month

RATES = load_rates()
WITHOUT_2024 = RateTable({y: r for y, r in RATES.nok_per_day.items() if y < 2024}, "old")
STRICT = RuleProfile(
    name="strict",
    late_admission_notice=LateAdmissionNotice.DELAY,
    cooperation_meeting_required_for=frozenset({Division.MENTAL_HEALTH}),
)
# (year, month): DST begins, DST ends, the turn of 2023/2024 (2024 rate-pending with
# WITHOUT_2024), and the turn of 2018/2019 (mental health is covered from 2019-01-01).
MONTHS = [(2024, 3), (2024, 10), (2023, 12), (2018, 12)]
TICK_DAYS = 45


ENDS = {EventKind.SERVICE_READY, EventKind.DISCHARGED, EventKind.DISCHARGE_READY_WITHDRAWN}


def _histories(episode: SimulatedEpisode) -> list[list[EpisodeEvent]]:
    """The episode's history, and the same cut before its first end: still running, so
    ticks extend it all month and across the turn of the year."""
    events = sorted([*episode.hospital, *episode.municipal], key=EpisodeEvent.sort_key)
    end = next((i for i, e in enumerate(events) if e.kind in ENDS), len(events))
    return [events, events[:end]] if 0 < end < len(events) else [events]


def _live_then_ticked(events: list[EpisodeEvent], first: dt.date, rules: Rules) -> int:
    """Apply the events as the worker does, tick every day after, and compare each day's
    statement with the full computation; returns how many ticks extended."""
    entry = ClockEntry(events[0].episode_id, 0, first)
    for event in sorted(events, key=EpisodeEvent.sort_key):
        entry = apply_event(entry, event, rules).entry
    extensions = 0
    for n in range(1, TICK_DAYS):
        day = first + dt.timedelta(days=n)
        before = entry
        entry = apply_tick(entry, day, rules).entry
        full = compute_statement(entry.episode_id, events, day, rules.rates, rules.profile)
        assert entry.announced == full, (entry.episode_id, day)
        if before.announced is not None and extended(
            before.announced, events, day, rules.rates, rules.profile
        ):
            extensions += 1
    return extensions


def test_ticks_give_what_compute_statement_gives_on_every_day_of_simulated_months() -> None:
    extensions = 0
    for year, month in MONTHS:
        episodes = simulate_month(year, month, 60, seed=year * 100 + month)
        for rates in (RATES, WITHOUT_2024):
            for profile in (NO_2019, STRICT):
                rules = Rules(rates, profile)
                for episode in episodes:
                    for events in _histories(episode):
                        extensions += _live_then_ticked(events, dt.date(year, month, 1), rules)
    assert extensions > 10_000  # the extension itself was exercised, not only the fallback


KINDS = [
    EventKind.ADMISSION_NOTIFIED,
    EventKind.COOPERATION_MEETING_HELD,
    EventKind.DISCHARGE_READY_NOTIFIED,
    EventKind.DISCHARGE_READY_NOTIFIED,
    EventKind.MUNICIPALITY_ANSWERED,
    EventKind.MUNICIPALITY_ANSWERED,
    EventKind.MUNICIPALITY_ANSWERED,
    EventKind.SERVICE_READY,
    EventKind.DISCHARGE_READY_WITHDRAWN,
    EventKind.DIED,
]
FIRST_DAY = dt.date(2023, 12, 20)  # the turn of a rate year within reach


@st.composite
def histories(draw: st.DrawFn) -> list[EpisodeEvent]:
    events = []
    if draw(st.booleans()):  # a period that opens (and may run): what a tick extends
        at = dt.datetime.combine(
            FIRST_DAY + dt.timedelta(days=draw(st.integers(0, 20))), dt.time(9), tzinfo=OSLO
        )
        for kind in (EventKind.ADMISSION_NOTIFIED, EventKind.DISCHARGE_READY_NOTIFIED):
            ready = at if kind is EventKind.DISCHARGE_READY_NOTIFIED else None
            events.append(
                EpisodeEvent(
                    kind.value, "81234:P1", at, "1103", Division.SOMATIC, kind, ready_at=ready
                )
            )
    for i in range(draw(st.integers(0 if events else 1, 8))):
        kind = draw(st.sampled_from(KINDS))
        occurred = dt.datetime.combine(
            FIRST_DAY + dt.timedelta(days=draw(st.integers(0, 25))),
            dt.time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 59]))),
            tzinfo=OSLO,
        )
        extra: dict[str, object] = {}
        if kind is EventKind.DISCHARGE_READY_NOTIFIED:  # ready now, earlier or in days
            extra["ready_at"] = occurred + dt.timedelta(hours=draw(st.integers(-30, 120)))
        elif kind is EventKind.MUNICIPALITY_ANSWERED:
            extra["can_receive"] = draw(st.booleans())
        division = draw(st.sampled_from([Division.SOMATIC, Division.MENTAL_HEALTH]))
        events.append(
            EpisodeEvent(f"e{i}", "81234:P1", occurred, "1103", division, kind, **extra)  # type: ignore[arg-type]
        )
    return events


@settings(max_examples=300, deadline=None)
@given(
    histories(),
    st.integers(0, 30),
    st.lists(st.integers(1, 9), min_size=1, max_size=8),
    st.sampled_from([RATES, WITHOUT_2024]),
    st.sampled_from(
        [
            NO_2019,
            STRICT,
            dataclasses.replace(
                NO_2019, coverage_starts=((Division.SOMATIC, dt.date(2024, 1, 3)),)
            ),
        ]
    ),
)
def test_an_extended_statement_is_the_full_one_whatever_days_the_ticks_skip(
    events: list[EpisodeEvent],
    start: int,
    steps: list[int],
    rates: RateTable,
    profile: RuleProfile,
) -> None:
    day = FIRST_DAY + dt.timedelta(days=start)
    statement = compute_statement("81234:P1", events, day, rates, profile)
    for step in steps:
        day += dt.timedelta(days=step)
        full = compute_statement("81234:P1", events, day, rates, profile)
        extension = extended(statement, events, day, rates, profile)
        assert extension is None or extension == full
        statement = full


def test_a_tick_recomputes_a_statement_announced_under_another_rule_profile() -> None:
    meeting_needed = dataclasses.replace(
        STRICT, cooperation_meeting_required_for=frozenset({Division.SOMATIC})
    )
    notice = dt.datetime(2024, 3, 5, 9, tzinfo=OSLO)
    events = [
        EpisodeEvent(
            "a", "81234:P1", notice, "1103", Division.SOMATIC, EventKind.ADMISSION_NOTIFIED
        ),
        EpisodeEvent(
            "n",
            "81234:P1",
            notice,
            "1103",
            Division.SOMATIC,
            EventKind.DISCHARGE_READY_NOTIFIED,
            ready_at=notice,
        ),
    ]
    entry = ClockEntry("81234:P1", 0, dt.date(2024, 3, 10))
    for event in events:
        entry = apply_event(entry, event, Rules(RATES, NO_2019)).entry
    ticked = apply_tick(entry, dt.date(2024, 3, 11), Rules(RATES, meeting_needed)).entry
    assert ticked.announced == compute_statement(
        "81234:P1", events, dt.date(2024, 3, 11), RATES, meeting_needed
    )
