"""An episode's history as the clock reads it: deduplicated, in event-time order, cut at
the as-of day, and folded into the periods that notices open and end events close."""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from operator import attrgetter

from discharge.domain.statement import Conflict, ConflictKind, EndCause
from overgang.events import EpisodeEvent, EventKind, oslo_day, oslo_midnight

END_CAUSE = {
    EventKind.SERVICE_READY: EndCause.SERVICE_READY,
    EventKind.DISCHARGED: EndCause.DISCHARGED,
    EventKind.DISCHARGE_READY_WITHDRAWN: EndCause.WITHDRAWN,
    EventKind.DIED: EndCause.DIED,
}


def _canonical(event: EpisodeEvent) -> str:
    return repr(
        tuple(
            v.astimezone(dt.UTC).isoformat() if isinstance(v, dt.datetime) else repr(v)
            for v in dataclasses.astuple(event)
        )
    )


_OCCURRED_AT = attrgetter("occurred_at")


def in_event_order(events: Iterable[EpisodeEvent]) -> list[EpisodeEvent]:
    """Sorted by `EpisodeEvent.sort_key`. By event time alone first (a C-level key, no
    tuple per event); the whole key only when two events share an instant."""
    ordered = sorted(events, key=_OCCURRED_AT)
    for earlier, later in pairwise(ordered):
        if earlier.occurred_at == later.occurred_at:
            return sorted(ordered, key=EpisodeEvent.sort_key)
    return ordered


def unique_events(events: Iterable[EpisodeEvent]) -> tuple[list[EpisodeEvent], list[Conflict]]:
    """Drop duplicates by event id, then order by event time (ties: `EventKind` order).

    Of two different events with one id the one whose canonical form sorts first is
    kept; each other version is one conflict. Both depend only on the set of events."""
    batch: Sequence[EpisodeEvent] = events if isinstance(events, list | tuple) else list(events)
    first = {event.event_id: event for event in batch}
    if len(first) == len(batch):  # every id once (the usual case): nothing to decide
        return in_event_order(first.values()), []
    first = {}
    versions: dict[str, set[EpisodeEvent]] = {}  # only ids with two different versions
    for event in batch:
        seen = first.setdefault(event.event_id, event)
        if seen is not event and seen != event:
            versions.setdefault(event.event_id, {seen}).add(event)
    conflicts: list[Conflict] = []
    for event_id in sorted(versions):
        kept, *others = sorted(versions[event_id], key=_canonical)
        first[event_id] = kept
        conflicts.append(
            Conflict(
                ConflictKind.DUPLICATE_EVENT_ID,
                event_id,
                event_id,
                f"{len(others) + 1} different events share this id; kept the one "
                "whose canonical form sorts first",
            )
        )
    return in_event_order(first.values()), conflicts


def seen_as_of(ordered: list[EpisodeEvent], as_of: dt.date) -> list[EpisodeEvent]:
    """The events that occurred before `as_of` began (Europe/Oslo); `ordered` itself when
    that is all of them (callers only read it)."""
    cut = oslo_midnight(as_of)
    if not ordered or ordered[-1].occurred_at < cut:
        return ordered  # all seen (a past year replayed, most live clocks): no copy
    # `ordered` is in event-time order, so the seen events are a prefix.
    return ordered[: bisect.bisect_left(ordered, cut, key=_OCCURRED_AT)]


@dataclass
class OpenPeriod:
    """A period as the fold finds it: opened by a notice, perhaps ended."""

    notice: EpisodeEvent
    start: dt.date
    position: int  # index of the notice in the ordered history
    answers: list[EpisodeEvent] = dataclasses.field(default_factory=list)
    updates: list[str] = dataclasses.field(default_factory=list)
    end: dt.date | None = None
    end_cause: EndCause | None = None
    end_event: EpisodeEvent | None = None
    end_position: int | None = None


def fold_periods(ordered: list[EpisodeEvent]) -> tuple[list[OpenPeriod], list[Conflict]]:
    """The periods of an ordered history, and the notices that came after a death."""
    periods: list[OpenPeriod] = []
    conflicts: list[Conflict] = []
    current: OpenPeriod | None = None
    death: EpisodeEvent | None = None
    for position, event in enumerate(ordered):
        if event.kind is EventKind.DISCHARGE_READY_NOTIFIED:
            if death is not None:
                conflicts.append(
                    Conflict(
                        ConflictKind.NOTICE_AFTER_DEATH,
                        event.event_id,
                        death.event_id,
                        "a discharge-ready notice after the patient's death opens no period",
                    )
                )
            elif current is not None:
                # A repeated notice while one is in force (an update) opens nothing new.
                current.updates.append(event.event_id)
            else:
                assert event.ready_at is not None
                start = max(oslo_day(event.ready_at), event.oslo_day)
                current = OpenPeriod(notice=event, start=start, position=position)
                periods.append(current)
        elif event.kind is EventKind.MUNICIPALITY_ANSWERED:
            if current is not None:
                current.answers.append(event)
        elif event.kind in END_CAUSE:
            if event.kind is EventKind.DIED and death is None:
                death = event
            if current is not None:
                current.end = event.oslo_day
                current.end_cause = END_CAUSE[event.kind]
                current.end_event = event
                current.end_position = position
                current = None
    return periods, conflicts
