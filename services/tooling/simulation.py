"""A realistic, seeded month of hospital episodes for demos, tests and benchmarks.

Shapes follow domain-sources.md §4 (about 80 % of discharge-ready patients wait no
billable day; waits of 1-12 days; psychiatry and TSB a minority), with the irregular
cases an operator meets: late answers, reversals, withdrawals, deaths, a missing or late
admission notice. Hospital events and the municipality's answers are generated
separately, so a demo can let simulated coordinators give the answers over gRPC.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from overgang.events import OSLO, Destination, Division, EpisodeEvent, EventKind, Need
from pathway.domain.national_id import with_check_digits

HOSPITAL_HER_ID = "80001"  # fictitious HER-id for the simulated health trust

# Municipalities around Helse Stavanger, weighted roughly by population.
ROGALAND = (("1103", 60), ("1108", 22), ("1124", 8), ("1127", 4), ("1130", 6))

_NEEDS_BY_DESTINATION = {
    Destination.HOME: (Need.HOME_NURSING, Need.PRACTICAL_ASSISTANCE, Need.ASSISTIVE_AIDS),
    Destination.SHORT_TERM_BED: (Need.SHORT_TERM_BED,),
    Destination.NURSING_HOME: (Need.NURSING_HOME,),
    Destination.HOUSING: (Need.HOUSING,),
}


@dataclass(frozen=True)
class Answer:
    """A municipal answer the simulation expects a coordinator to give."""

    episode_id: str
    at: dt.datetime
    can_receive: bool
    expected_ready_date: dt.date | None = None


@dataclass
class SimulatedEpisode:
    episode_id: str
    municipality: str
    division: Division
    hospital: list[EpisodeEvent] = field(default_factory=list)
    municipal: list[EpisodeEvent] = field(default_factory=list)
    story: str = "ordinary"


class _Builder:
    def __init__(self, episode: SimulatedEpisode) -> None:
        self.episode = episode
        self.count = 0

    def add(
        self, kind: EventKind, when: dt.datetime, municipal: bool = False, **extra: object
    ) -> None:
        self.count += 1
        event = EpisodeEvent(
            event_id=f"{self.episode.episode_id}:{self.count:02d}",
            episode_id=self.episode.episode_id,
            occurred_at=when.astimezone(dt.UTC),
            municipality=self.episode.municipality,
            division=self.episode.division,
            kind=kind,
            **extra,  # type: ignore[arg-type]
        )
        (self.episode.municipal if municipal else self.episode.hospital).append(event)


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=OSLO)


def _pick_needs(rnd: random.Random, destination: Destination) -> tuple[Need, ...]:
    needs = list(_NEEDS_BY_DESTINATION.get(destination, ()))
    chosen = {n for n in needs if rnd.random() < 0.7} or {needs[0]} if needs else set()
    if rnd.random() < 0.35:
        chosen.add(Need.REHABILITATION)
    if rnd.random() < 0.5:
        chosen.add(Need.GP_FOLLOW_UP)
    return tuple(n for n in Need if n in chosen)


def _episode(
    rnd: random.Random, year: int, month: int, number: int, her_id: str
) -> SimulatedEpisode:
    municipality = rnd.choices([m for m, _ in ROGALAND], [w for _, w in ROGALAND])[0]
    division = rnd.choices(list(Division), [80, 14, 6])[0]
    episode = SimulatedEpisode(
        episode_id=f"{her_id}:{year}{month:02d}-{number:04d}",
        municipality=municipality,
        division=division,
    )
    b = _Builder(episode)
    first = dt.date(year, month, 1)
    admitted_day = first + dt.timedelta(days=rnd.randint(0, 19))
    admitted_at = _at(admitted_day, rnd.randint(0, 23), rnd.choice((5, 20, 40)))
    b.add(EventKind.ADMITTED, admitted_at)

    destination = rnd.choices(list(_NEEDS_BY_DESTINATION), [60, 25, 8, 7])[0]
    needs = _pick_needs(rnd, destination)
    roll = rnd.random()
    notice_story = (
        "missing-admission-notice"
        if roll < 0.03
        else "late-admission-notice"
        if roll < 0.05
        else ""
    )
    if not notice_story:
        # Helseopplysninger within 24 hours of admission.
        notified = admitted_at + dt.timedelta(hours=rnd.randint(1, 20))
        b.add(EventKind.ADMISSION_NOTIFIED, notified, needs=needs)

    ready_day = admitted_day + dt.timedelta(days=rnd.randint(2, 8))
    declared = _at(ready_day, rnd.randint(8, 13), rnd.choice((0, 15, 30)))
    notice = declared + dt.timedelta(minutes=rnd.choice((10, 45, 120)))
    b.add(EventKind.DISCHARGE_READY_NOTIFIED, notice, ready_at=declared, needs=needs)
    if notice_story == "late-admission-notice":
        b.add(EventKind.ADMISSION_NOTIFIED, notice + dt.timedelta(hours=3), needs=needs)
    if division is not Division.SOMATIC and rnd.random() < 0.6:
        b.add(EventKind.COOPERATION_MEETING_HELD, notice + dt.timedelta(hours=26))

    fate = rnd.random()
    if fate < 0.01:
        episode.story = "died"
        b.add(EventKind.DIED, notice + dt.timedelta(days=rnd.randint(1, 4), hours=2))
        return episode
    if fate < 0.06:
        episode.story = "withdrawn"
        withdrawn = notice + dt.timedelta(days=rnd.randint(1, 2), hours=5)
        b.add(EventKind.DISCHARGE_READY_WITHDRAWN, withdrawn)
        notice = withdrawn + dt.timedelta(days=rnd.randint(2, 4))
        b.add(EventKind.DISCHARGE_READY_NOTIFIED, notice, ready_at=notice, needs=needs)

    wait = rnd.random()
    if wait < 0.78:  # the municipality can receive at once
        answer_at = notice + dt.timedelta(hours=rnd.choice((1, 2, 4)))
        b.add(EventKind.MUNICIPALITY_ANSWERED, answer_at, municipal=True, can_receive=True)
        discharged = answer_at + dt.timedelta(hours=rnd.choice((3, 20, 26)))
    else:
        late = wait > 0.95
        answer_at = notice + dt.timedelta(days=1 if late else 0, hours=rnd.choice((2, 5)))
        expected = notice.astimezone(OSLO).date() + dt.timedelta(days=rnd.randint(1, 10))
        b.add(
            EventKind.MUNICIPALITY_ANSWERED,
            answer_at,
            municipal=True,
            can_receive=False,
            expected_ready_date=expected,
        )
        episode.story = "late-answer" if late else "waits"
        slip = rnd.choice((0, 0, 0, 1, 2))
        ready_at = _at(expected + dt.timedelta(days=slip), rnd.randint(8, 15))
        b.add(EventKind.SERVICE_READY, ready_at, municipal=True)
        discharged = ready_at + dt.timedelta(hours=rnd.choice((2, 20)))
    if notice_story:
        episode.story = notice_story
    b.add(EventKind.DISCHARGED, discharged, destination=destination)
    return episode


def simulate_month(
    year: int, month: int, episodes: int, seed: int = 2024, her_id: str = HOSPITAL_HER_ID
) -> list[SimulatedEpisode]:
    rnd = random.Random(seed)
    return [_episode(rnd, year, month, n, her_id) for n in range(1, episodes + 1)]


def all_events(episodes: list[SimulatedEpisode]) -> Iterator[EpisodeEvent]:
    for episode in episodes:
        yield from episode.hospital
        yield from episode.municipal


def synthetic_national_id(rnd: random.Random) -> str:
    """A valid (mod-11) synthetic test number: month + 80 marks it as a Tenor-style test
    person, so a demo can never carry a real person's fødselsnummer."""
    while True:
        birth = dt.date(1930, 1, 1) + dt.timedelta(days=rnd.randint(0, 30_000))
        first_nine = f"{birth.day:02d}{birth.month + 80:02d}{birth.year % 100:02d}"
        number = with_check_digits(first_nine + f"{rnd.randint(0, 999):03d}")
        if number is not None:
            return number


def happened_before(
    episodes: list[SimulatedEpisode], cutoff: dt.datetime
) -> tuple[list[EpisodeEvent], list[EpisodeEvent]]:
    """The hospital and the municipal events that have happened by `cutoff` (a demo's
    "today"), each in event-time order."""
    hospital = [e for s in episodes for e in s.hospital if e.occurred_at < cutoff]
    municipal = [e for s in episodes for e in s.municipal if e.occurred_at < cutoff]
    return sorted(hospital, key=EpisodeEvent.sort_key), sorted(municipal, key=EpisodeEvent.sort_key)
