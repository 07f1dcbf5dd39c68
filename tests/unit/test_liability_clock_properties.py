"""Properties: the statement is a pure function of the event set, and the live clock's
announcements always add up to it, whatever the arrival order, duplicates or ticks."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from discharge.domain.clock import Statement, compute_statement
from discharge.domain.liability_diff import ChangeKind, LiabilityChange, liability_diff
from discharge.domain.live_clock import rates_cause
from discharge.domain.rates import RateTable
from discharge.rules import load_rates
from overgang.events import OSLO, Destination, Division, EpisodeEvent, EventKind

RATES = load_rates()
# The same table before the operator added 2024: January's days are rate-pending.
WITHOUT_2024 = RateTable({y: r for y, r in RATES.nok_per_day.items() if y != 2024}, "old")
EPISODE = "81234:P1"
FIRST_DAY = dt.date(2023, 12, 20)
AS_OF = dt.date(2024, 2, 1)

KINDS = [
    EventKind.ADMITTED,
    EventKind.ADMISSION_NOTIFIED,
    EventKind.DISCHARGE_READY_NOTIFIED,
    EventKind.DISCHARGE_READY_NOTIFIED,
    EventKind.MUNICIPALITY_ANSWERED,
    EventKind.MUNICIPALITY_ANSWERED,
    EventKind.SERVICE_READY,
    EventKind.DISCHARGE_READY_WITHDRAWN,
    EventKind.DISCHARGED,
    EventKind.DIED,
]


@st.composite
def episode_events(draw: st.DrawFn) -> list[EpisodeEvent]:
    count = draw(st.integers(min_value=1, max_value=10))
    events = []
    for i in range(count):
        kind = draw(st.sampled_from(KINDS))
        occurred = dt.datetime.combine(
            FIRST_DAY + dt.timedelta(days=draw(st.integers(0, 20))),
            dt.time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 30]))),
            tzinfo=OSLO,
        )
        extra: dict[str, object] = {}
        if kind is EventKind.DISCHARGE_READY_NOTIFIED:
            extra["ready_at"] = occurred + dt.timedelta(hours=draw(st.integers(-30, 30)))
        elif kind is EventKind.MUNICIPALITY_ANSWERED:
            extra["can_receive"] = draw(st.booleans())
        elif kind is EventKind.DISCHARGED:
            extra["destination"] = draw(st.sampled_from(list(Destination)))
        events.append(
            EpisodeEvent(
                event_id=f"e{i}",
                episode_id=EPISODE,
                occurred_at=occurred,
                municipality=draw(st.sampled_from(["1103", "1108"])),
                division=Division.SOMATIC,
                kind=kind,
                **extra,  # type: ignore[arg-type]
            )
        )
    return events


def statement(
    events: list[EpisodeEvent], as_of: dt.date = AS_OF, rates: RateTable = RATES
) -> Statement:
    return compute_statement(EPISODE, events, as_of, rates)


@settings(max_examples=300, deadline=None)
@given(episode_events(), st.randoms(use_true_random=False))
def test_any_order_of_the_same_events_gives_the_same_statement(
    events: list[EpisodeEvent], rnd: object
) -> None:
    shuffled = list(events)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert statement(shuffled) == statement(events)


@settings(max_examples=300, deadline=None)
@given(episode_events(), st.data())
def test_any_duplication_of_the_same_events_gives_the_same_statement(
    events: list[EpisodeEvent], data: st.DataObject
) -> None:
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=10))
    assert statement(events + repeats) == statement(events)


@settings(max_examples=300, deadline=None)
@given(episode_events())
def test_liable_days_lie_inside_their_periods(events: list[EpisodeEvent]) -> None:
    for period in statement(events).periods:
        for day in period.days:
            assert period.start <= day.date < (period.end or AS_OF)


def apply(ledger: dict[dt.date, int | None], change: LiabilityChange) -> None:
    if change.kind is ChangeKind.DAY_ACCRUED:
        assert change.day is not None and change.day.date not in ledger
        ledger[change.day.date] = change.day.amount_nok
    elif change.kind is ChangeKind.CORRECTED:
        for day in change.reversed:
            assert ledger.pop(day.date) == day.amount_nok
        for day in change.added:
            assert day.date not in ledger
            ledger[day.date] = day.amount_nok


@settings(max_examples=300, deadline=None)
@given(episode_events(), st.data())
def test_live_announcements_add_up_to_the_replayed_statement(
    events: list[EpisodeEvent], data: st.DataObject
) -> None:
    """Events arrive in any order, duplicated, interleaved with day ticks: the sum of
    accruals and corrections equals the statement of the whole history."""
    arrivals = data.draw(st.permutations(events + data.draw(st.lists(st.sampled_from(events)))))
    as_of = FIRST_DAY
    seen: list[EpisodeEvent] = []
    previous: Statement | None = None
    ledger: dict[dt.date, int | None] = {}
    announced: set[str] = set()
    for event in arrivals:
        if data.draw(st.booleans()):  # a tick (or several days of them) first
            as_of += dt.timedelta(days=data.draw(st.integers(1, 4)))
            current = statement(seen, as_of)
            for change in liability_diff(previous, current, None):
                assert change.event_id not in announced
                announced.add(change.event_id)
                apply(ledger, change)
            previous = current
        if event in seen:
            continue  # the service dedupes by event id before recomputing
        seen.append(event)
        current = statement(seen, as_of)
        for change in liability_diff(previous, current, event.event_id):
            assert change.event_id not in announced
            announced.add(change.event_id)
            apply(ledger, change)
        previous = current
    final = statement(events, as_of)
    assert ledger == {d.date: d.amount_nok for d in final.days}


ADMISSION_NOTICE = EpisodeEvent(
    event_id="admission",
    episode_id=EPISODE,
    occurred_at=dt.datetime.combine(FIRST_DAY, dt.time(0), tzinfo=OSLO),
    municipality="1103",
    division=Division.SOMATIC,
    kind=EventKind.ADMISSION_NOTIFIED,
)


@settings(max_examples=300, deadline=None)
@given(episode_events(), st.data())
def test_live_announcements_add_up_with_rate_pending_days_and_a_rate_added_midway(
    events: list[EpisodeEvent], data: st.DataObject
) -> None:
    """2024 has no rate at first (its days are announced rate-pending); at some point the
    operator adds it, and the corrections bring the ledger to the priced statement."""
    events = [ADMISSION_NOTICE, *events]
    arrivals = data.draw(st.permutations(events))
    added_at = data.draw(st.integers(0, len(arrivals)))
    as_of, rates = dt.date(2024, 1, 2), WITHOUT_2024
    seen: list[EpisodeEvent] = []
    previous: Statement | None = None
    ledger: dict[dt.date, int | None] = {}
    announced: set[str] = set()

    def announce(cause: str | None) -> None:
        nonlocal previous
        current = statement(seen, as_of, rates)
        for change in liability_diff(previous, current, cause):
            assert change.event_id not in announced
            announced.add(change.event_id)
            apply(ledger, change)
        previous = current

    for i, event in enumerate([*arrivals, None]):  # None: a last tick, up to AS_OF
        if i == added_at:
            rates = RATES
            announce(rates_cause(rates))
        if event is None:
            as_of = max(as_of, AS_OF)
        else:
            as_of += dt.timedelta(days=data.draw(st.integers(0, 6)))
        announce(None)
        if event is not None:
            seen.append(event)
            announce(event.event_id)
    assert ledger == {d.date: d.amount_nok for d in statement(events, as_of).days}
