"""Episode events as the domain sees them: validated, time-zone aware, immutable."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")


class Division(StrEnum):
    SOMATIC = "SOMATIC"
    MENTAL_HEALTH = "MENTAL_HEALTH"
    SUBSTANCE_USE = "SUBSTANCE_USE"


class Need(StrEnum):
    HOME_NURSING = "HOME_NURSING"
    PRACTICAL_ASSISTANCE = "PRACTICAL_ASSISTANCE"
    SHORT_TERM_BED = "SHORT_TERM_BED"
    NURSING_HOME = "NURSING_HOME"
    HOUSING = "HOUSING"
    ASSISTIVE_AIDS = "ASSISTIVE_AIDS"
    REHABILITATION = "REHABILITATION"
    GP_FOLLOW_UP = "GP_FOLLOW_UP"


class Destination(StrEnum):
    HOME = "HOME"
    SHORT_TERM_BED = "SHORT_TERM_BED"
    NURSING_HOME = "NURSING_HOME"
    HOUSING = "HOUSING"
    OTHER_HOSPITAL = "OTHER_HOSPITAL"
    OTHER = "OTHER"


class EventKind(StrEnum):
    """Declared in the order used to break ties between events at the same instant:
    causes before effects, so the result never depends on arrival order."""

    ADMITTED = "admitted"
    ADMISSION_NOTIFIED = "admissionNotified"
    COOPERATION_MEETING_HELD = "cooperationMeetingHeld"
    DISCHARGE_READY_NOTIFIED = "dischargeReadyNotified"
    MUNICIPALITY_ANSWERED = "municipalityAnswered"
    SERVICE_READY = "serviceReady"
    DISCHARGE_READY_WITHDRAWN = "dischargeReadyWithdrawn"
    DISCHARGED = "discharged"
    DIED = "died"


KIND_ORDER = {kind: rank for rank, kind in enumerate(EventKind)}
MUNICIPAL_KINDS = frozenset({EventKind.MUNICIPALITY_ANSWERED, EventKind.SERVICE_READY})


@dataclass(frozen=True)
class EpisodeEvent:
    event_id: str
    episode_id: str
    occurred_at: dt.datetime  # always time-zone aware
    municipality: str
    division: Division
    kind: EventKind
    ready_at: dt.datetime | None = None  # dischargeReadyNotified
    needs: tuple[Need, ...] = ()  # admissionNotified (expected), dischargeReadyNotified
    can_receive: bool | None = None  # municipalityAnswered
    expected_ready_date: dt.date | None = None  # municipalityAnswered
    destination: Destination | None = None  # discharged

    @property
    def oslo_day(self) -> dt.date:
        return oslo_day(self.occurred_at)

    def sort_key(self) -> tuple[dt.datetime, int, str]:
        return (self.occurred_at, KIND_ORDER[self.kind], self.event_id)


def oslo_day(instant: dt.datetime) -> dt.date:
    """The Europe/Oslo calendar day of an instant (handles CET/CEST)."""
    return instant.astimezone(OSLO).date()


def oslo_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=OSLO)
