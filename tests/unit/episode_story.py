"""A small builder so clock tests read like the regulation's examples."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from discharge.domain.clock import Statement, compute_statement
from discharge.domain.profile import NO_2019, RuleProfile
from discharge.domain.rates import RateTable
from discharge.rules import load_rates
from overgang.events import (
    OSLO,
    Destination,
    Division,
    EpisodeEvent,
    EventKind,
    Need,
)

RATES = load_rates()
# One valid line of the replay format, for tests that break it on purpose.
NOTICE_JSON: dict[str, Any] = {
    "eventId": "ev-1",
    "episodeId": "81234:E1",
    "occurredAt": "2024-03-04T10:00:00+01:00",
    "municipality": "1103",
    "division": "SOMATIC",
    "dischargeReadyNotified": {"readyAt": "2024-03-04T09:00:00+01:00", "needs": ["HOUSING"]},
}
_ids = itertools.count(1)


def at(day: str, time: str = "10:00") -> dt.datetime:
    """An instant given as an Oslo wall-clock day and time."""
    return dt.datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=OSLO)


class Episode:
    def __init__(
        self,
        episode_id: str = "81234:E1",
        municipality: str = "1103",
        division: Division = Division.SOMATIC,
    ) -> None:
        self.episode_id = episode_id
        self.municipality = municipality
        self.division = division
        self.events: list[EpisodeEvent] = []

    def _add(self, kind: EventKind, when: dt.datetime, **fields: object) -> Episode:
        fields.setdefault("municipality", self.municipality)
        self.events.append(
            EpisodeEvent(
                event_id=f"ev-{next(_ids)}",
                episode_id=self.episode_id,
                occurred_at=when,
                division=self.division,
                kind=kind,
                **fields,  # type: ignore[arg-type]
            )
        )
        return self

    def admitted(self, when: dt.datetime) -> Episode:
        return self._add(EventKind.ADMITTED, when)

    def admission_notice(self, when: dt.datetime, *needs: Need) -> Episode:
        return self._add(EventKind.ADMISSION_NOTIFIED, when, needs=tuple(needs))

    def discharge_ready(
        self,
        noticed: dt.datetime,
        declared: dt.datetime | None = None,
        municipality: str | None = None,
    ) -> Episode:
        return self._add(
            EventKind.DISCHARGE_READY_NOTIFIED,
            noticed,
            ready_at=declared or noticed,
            municipality=municipality or self.municipality,
        )

    def answer(self, when: dt.datetime, can_receive: bool, expected: str | None = None) -> Episode:
        return self._add(
            EventKind.MUNICIPALITY_ANSWERED,
            when,
            can_receive=can_receive,
            expected_ready_date=dt.date.fromisoformat(expected) if expected else None,
        )

    def service_ready(self, when: dt.datetime) -> Episode:
        return self._add(EventKind.SERVICE_READY, when)

    def discharged(self, when: dt.datetime, to: Destination = Destination.HOME) -> Episode:
        return self._add(EventKind.DISCHARGED, when, destination=to)

    def withdrawn(self, when: dt.datetime) -> Episode:
        return self._add(EventKind.DISCHARGE_READY_WITHDRAWN, when)

    def died(self, when: dt.datetime) -> Episode:
        return self._add(EventKind.DIED, when)

    def cooperation_meeting(self, when: dt.datetime) -> Episode:
        return self._add(EventKind.COOPERATION_MEETING_HELD, when)

    def statement(
        self, as_of: str = "2024-12-01", profile: RuleProfile = NO_2019, rates: RateTable = RATES
    ) -> Statement:
        return compute_statement(
            self.episode_id, self.events, dt.date.fromisoformat(as_of), rates, profile
        )


def days(statement: Statement) -> list[str]:
    return [d.date.isoformat() for d in statement.days]
