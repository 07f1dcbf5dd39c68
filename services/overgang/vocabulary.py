"""The published language beyond events: pathway stages and coordination task kinds.

Names match the `overgang.v1.Stage` and `overgang.v1.TaskKind` enums without their
`STAGE_` / `TASK_KIND_` prefixes; every service speaks them, none owns them."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    ADMITTED = "ADMITTED"
    DISCHARGE_READY = "DISCHARGE_READY"
    RECEIVED = "RECEIVED"
    REHABILITATION = "REHABILITATION"
    FOLLOW_UP = "FOLLOW_UP"
    CLOSED = "CLOSED"


class TaskKind(StrEnum):
    ASSESS_AND_PLAN = "ASSESS_AND_PLAN"
    ANSWER_HOSPITAL = "ANSWER_HOSPITAL"
    START_HOME_CARE = "START_HOME_CARE"
    ALLOCATE_SHORT_TERM_BED = "ALLOCATE_SHORT_TERM_BED"
    ORDER_ASSISTIVE_AIDS = "ORDER_ASSISTIVE_AIDS"
    REHABILITATION_INTAKE = "REHABILITATION_INTAKE"
    FOLLOW_UP_VISIT = "FOLLOW_UP_VISIT"
    REASSESS_DECISION = "REASSESS_DECISION"
