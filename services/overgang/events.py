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
    """Declared in the order that breaks ties between events at the same instant, so a
    result never depends on arrival order (the clock and the pathway fold both use it).

    Same instant, earlier kind first (causes before effects):

    ===============================  =========================================================
    at one instant                   order and why
    ===============================  =========================================================
    admitted + anything              admitted first: every other event is about the stay
    admission notice + notice        admission notice first: it counts as sent before
                                     (no void, no delay)
    cooperation meeting + notice     meeting first: it counts as held before (no delay)
    admission notice + meeting       admission notice first (both are preconditions; the
                                     order between them changes nothing)
    withdrawal + new notice          withdrawal first: it ends the period in force (back to
                                     ADMITTED), then the new notice opens a new period
    withdrawal + answer / service    withdrawal first: the answer or service ready belongs
    ready                            to a notice of the same instant if there is one,
                                     otherwise it has nothing in force to act on
    withdrawal + discharge / death   withdrawal first: it ends the period (WITHDRAWN), the
                                     discharge or death closes the stay
    notice + answer                  notice first: the answer is to that notice ("can
                                     receive" at once: no day owed)
    notice + service ready           notice first: ends at once, 0 days (ENDED, not an
                                     orphan service ready and a RUNNING period)
    notice + discharge / death       notice first: it opens, the discharge or death ends it
                                     the same day, 0 days; not a notice after death
    answer + service ready           answer first; the end day is not billed either way
    service ready + discharge        service ready first: end cause SERVICE_READY
    any + death                      death last: it ends everything at its instant
    discharge + death                discharge first: end cause DISCHARGED, then death
    same kind twice                  by event id: e.g. of two notices the first opens the
                                     period and the second is an update
    ===============================  =========================================================
    """

    ADMITTED = "admitted"
    ADMISSION_NOTIFIED = "admissionNotified"
    COOPERATION_MEETING_HELD = "cooperationMeetingHeld"
    DISCHARGE_READY_WITHDRAWN = "dischargeReadyWithdrawn"
    DISCHARGE_READY_NOTIFIED = "dischargeReadyNotified"
    MUNICIPALITY_ANSWERED = "municipalityAnswered"
    SERVICE_READY = "serviceReady"
    DISCHARGED = "discharged"
    DIED = "died"


KIND_ORDER = {kind: rank for rank, kind in enumerate(EventKind)}
MUNICIPAL_KINDS = frozenset({EventKind.MUNICIPALITY_ANSWERED, EventKind.SERVICE_READY})


class _OsloDayMemo:
    """A slot for the event's Oslo day, filled on first use: the clock asks for it many
    times per event (per liable day for an answer), and `astimezone` to a `ZoneInfo` is
    the costly part. Not a field, so equality, hash, repr, `fields` and `replace` are
    what they were."""

    __slots__ = ("_oslo_day",)
    _oslo_day: dt.date


@dataclass(frozen=True, slots=True)
class EpisodeEvent(_OsloDayMemo):
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
        try:
            return self._oslo_day
        except AttributeError:
            day = oslo_day(self.occurred_at)
            object.__setattr__(self, "_oslo_day", day)  # a memo of a pure function
            return day

    def sort_key(self) -> tuple[dt.datetime, int, str]:
        return (self.occurred_at, KIND_ORDER[self.kind], self.event_id)


def oslo_day(instant: dt.datetime) -> dt.date:
    """The Europe/Oslo calendar day of an instant (handles CET/CEST)."""
    return instant.astimezone(OSLO).date()


def oslo_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=OSLO)
