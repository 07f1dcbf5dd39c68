"""Rule profiles: the switches domain.md marks UNVERIFIED are configuration, not code."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from overgang.events import Division


class LateAdmissionNotice(StrEnum):
    # An admission notice sent after the discharge-ready notice voids the period.
    VOID = "void"
    # ... or only delays the start to the day the admission notice was sent.
    DELAY = "delay"


@dataclass(frozen=True)
class RuleProfile:
    name: str = "no-2019"
    late_admission_notice: LateAdmissionNotice = LateAdmissionNotice.VOID
    # Divisions where liability needs a cooperation meeting (samarbeidsmøte) first.
    cooperation_meeting_required_for: frozenset[Division] = field(default_factory=frozenset)


NO_2019 = RuleProfile()
