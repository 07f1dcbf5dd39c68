"""Rule profiles: the switches domain.md marks UNVERIFIED, and the coverage of each
division by date, are configuration, not code."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from overgang.events import Division


class LateAdmissionNotice(StrEnum):
    # An admission notice sent after the discharge-ready notice voids the period.
    VOID = "void"
    # ... or only delays the start to the day the admission notice was sent.
    DELAY = "delay"


# The regulation took effect on 2012-01-01 for somatic care; mental-health care and
# substance-use treatment (TSB) are covered from 2019-01-01 (domain.md, rule 6).
NO_2019_COVERAGE: tuple[tuple[Division, dt.date], ...] = (
    (Division.SOMATIC, dt.date(2012, 1, 1)),
    (Division.MENTAL_HEALTH, dt.date(2019, 1, 1)),
    (Division.SUBSTANCE_USE, dt.date(2019, 1, 1)),
)


def coverage(starts: Mapping[Division, dt.date]) -> tuple[tuple[Division, dt.date], ...]:
    """The profile's form of a coverage mapping (hashable, in declaration order)."""
    return tuple((division, starts[division]) for division in Division if division in starts)


@dataclass(frozen=True)
class RuleProfile:
    name: str = "no-2019"
    late_admission_notice: LateAdmissionNotice = LateAdmissionNotice.VOID
    # Divisions where liability needs a cooperation meeting (samarbeidsmøte) first.
    cooperation_meeting_required_for: frozenset[Division] = field(default_factory=frozenset)
    # The first liable day per division; a division not listed has no coverage limit.
    coverage_starts: tuple[tuple[Division, dt.date], ...] = NO_2019_COVERAGE

    def coverage_start(self, division: Division) -> dt.date | None:
        return dict(self.coverage_starts).get(division)

    @functools.cached_property
    def fingerprint(self) -> str:
        """A short, stable id of the rules (not of the name alone): a statement computed
        under other rules is recomputed, never extended (`live_clock.apply_tick`)."""
        content = repr(
            (
                self.name,
                self.late_admission_notice.value,
                sorted(d.value for d in self.cooperation_meeting_required_for),
                [(d.value, day.isoformat()) for d, day in self.coverage_starts],
            )
        )
        return hashlib.sha256(content.encode()).hexdigest()[:12]


NO_2019 = RuleProfile()
