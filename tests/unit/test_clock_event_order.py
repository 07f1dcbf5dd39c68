"""The clock orders an episode's events by event time, ties by `EventKind` order, then by
event id (`EpisodeEvent.sort_key`); `in_event_order` sorts by time alone when no two
events share an instant, and must give the same order either way."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from discharge.domain.history import in_event_order
from overgang.events import OSLO, Division, EpisodeEvent, EventKind

BASE = dt.datetime(2024, 3, 30, 22, 0, tzinfo=dt.UTC)


def _event(n: int, minute: int, kind: EventKind, in_oslo: bool) -> EpisodeEvent:
    at = BASE + dt.timedelta(minutes=minute)
    return EpisodeEvent(
        f"E:{n}", "E", at.astimezone(OSLO) if in_oslo else at, "1103", Division.SOMATIC, kind
    )


events = st.lists(
    st.tuples(st.integers(0, 5), st.sampled_from(list(EventKind)), st.booleans()),
    max_size=12,
).map(lambda specs: [_event(n, m, k, o) for n, (m, k, o) in enumerate(specs)])


@settings(max_examples=500)
@given(events)
def test_events_are_ordered_by_time_then_kind_then_id_with_or_without_ties(
    history: list[EpisodeEvent],
) -> None:
    assert in_event_order(history) == sorted(history, key=EpisodeEvent.sort_key)


def test_two_events_at_one_instant_in_two_time_zones_are_a_tie() -> None:
    utc = _event(1, 0, EventKind.DISCHARGED, in_oslo=False)
    oslo = _event(2, 0, EventKind.ADMITTED, in_oslo=True)
    assert in_event_order([utc, oslo]) == [oslo, utc]  # ADMITTED before DISCHARGED
