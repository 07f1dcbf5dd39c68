"""The coordination rules (coordination.domain) with the shipped rule files: one row of
domain.md's "Coordination tasks" table, or one lifecycle rule, per test."""

from __future__ import annotations

import datetime as dt
import itertools
import tomllib
from typing import Any

import pytest

from coordination.domain.calendar import end_of_day, start_of_day
from coordination.domain.planning import Episode, PathwayChange, advance_episode, plan
from coordination.domain.rules import RuleError, RuleSet
from coordination.domain.task import (
    Priority,
    Task,
    TaskStateError,
    TaskStatus,
    overdue,
    task_id_for,
)
from coordination.rulebook import PACKAGED_RULES, RuleBook, merge_rule_data, parse_rule_set
from overgang.events import OSLO, Destination, Division, EpisodeEvent, EventKind, Need
from overgang.vocabulary import Stage, TaskKind

BOOK = RuleBook()
OSLO_KOMMUNE = "0301"
STAVANGER = "1103"
EP = "70001:ep-1"
TUESDAY = dt.datetime(2026, 3, 10, 10, 0, tzinfo=OSLO)
_ids = itertools.count(1)


def event(kind: EventKind, at: dt.datetime = TUESDAY, **fields: Any) -> EpisodeEvent:
    return EpisodeEvent(
        event_id=f"ev-{next(_ids)}",
        episode_id=EP,
        occurred_at=at,
        municipality=fields.pop("municipality", OSLO_KOMMUNE),
        division=Division.SOMATIC,
        kind=kind,
        **fields,
    )


class Sim:
    """Feeds pathway changes through advance_episode + plan, like the store does."""

    def __init__(self, municipality: str = OSLO_KOMMUNE, pseudonym: str = "p-1") -> None:
        self.municipality = municipality
        self.pseudonym = pseudonym
        self.episode: Episode | None = None
        self.tasks: dict[str, Task] = {}
        self.stage: Stage | None = None

    def rules(self) -> RuleSet:
        return BOOK.for_municipality(self.municipality)

    def feed(
        self,
        cause: EpisodeEvent | None = None,
        to: Stage | None = None,
        at: dt.datetime | None = None,
        needs: tuple[Need, ...] = (),
        now: dt.datetime | None = None,
        event_id: str | None = None,
    ) -> list[Task]:
        when = at or (cause.occurred_at if cause else TUESDAY)
        change = PathwayChange(
            event_id=event_id or f"pe-{next(_ids)}",
            episode_id=EP,
            at=when,
            municipality=self.municipality,
            division="SOMATIC",
            patient_pseudonym=self.pseudonym,
            from_stage=self.stage,
            to_stage=to or self.stage,
            cause=cause,
            needs=needs,
        )
        self.stage = change.to_stage
        self.episode = advance_episode(self.episode, change)
        changed = plan(change, self.episode, self.tasks.values(), self.rules(), now or when)
        self.tasks.update({t.task_id: t for t in changed})
        return changed

    def of(self, kind: TaskKind) -> Task:
        (task,) = [t for t in self.tasks.values() if t.kind is kind]
        return task

    def notice(self, *needs: Need, at: dt.datetime = TUESDAY) -> list[Task]:
        cause = event(
            EventKind.DISCHARGE_READY_NOTIFIED,
            at,
            ready_at=at,
            needs=needs,
            municipality=self.municipality,
        )
        return self.feed(cause, to=Stage.DISCHARGE_READY, needs=needs)

    def discharge(self, at: dt.datetime) -> list[Task]:
        cause = event(
            EventKind.DISCHARGED, at, destination=Destination.HOME, municipality=self.municipality
        )
        return self.feed(cause, to=Stage.RECEIVED)


# ---------------------------------------------------------------- the table, row by row
def test_admission_notice_with_needs_gives_health_office_assessment_in_one_working_day() -> None:
    sim = Sim()
    friday = dt.datetime(2026, 3, 13, 15, 0, tzinfo=OSLO)
    (task,) = sim.feed(
        event(EventKind.ADMISSION_NOTIFIED, friday, needs=(Need.HOME_NURSING,)), to=Stage.ADMITTED
    )
    assert (task.kind, task.unit, task.due_at) == (
        TaskKind.ASSESS_AND_PLAN,
        "HEALTH_OFFICE",
        end_of_day(dt.date(2026, 3, 16)),
    )


def test_admission_notice_without_expected_needs_creates_no_task() -> None:
    assert Sim().feed(event(EventKind.ADMISSION_NOTIFIED), to=Stage.ADMITTED) == []


def test_discharge_ready_notice_gives_urgent_answer_hospital_due_end_of_same_oslo_day() -> None:
    sim = Sim()
    late = dt.datetime(2026, 3, 10, 23, 30, tzinfo=OSLO)  # 22:30 UTC, still Tuesday in Oslo
    sim.notice(at=late)
    task = sim.of(TaskKind.ANSWER_HOSPITAL)
    assert (task.unit, task.priority, task.due_at) == (
        "HEALTH_OFFICE",
        Priority.URGENT,
        end_of_day(dt.date(2026, 3, 10)),
    )


@pytest.mark.parametrize("need", [Need.HOME_NURSING, Need.PRACTICAL_ASSISTANCE])
def test_home_care_need_gives_start_home_care_due_on_the_ready_day(need: Need) -> None:
    sim = Sim()
    sim.notice(need)
    task = sim.of(TaskKind.START_HOME_CARE)
    assert (task.unit, task.due_at) == ("HOME_CARE", end_of_day(TUESDAY.date()))


def test_start_home_care_moves_to_the_expected_ready_date_of_the_answer() -> None:
    sim = Sim()
    sim.notice(Need.HOME_NURSING)
    sim.feed(
        event(
            EventKind.MUNICIPALITY_ANSWERED,
            can_receive=False,
            expected_ready_date=dt.date(2026, 3, 13),
        )
    )
    assert sim.of(TaskKind.START_HOME_CARE).due_at == end_of_day(dt.date(2026, 3, 13))


def test_start_home_care_moves_to_the_discharge_day_on_reception() -> None:
    sim = Sim()
    sim.notice(Need.HOME_NURSING)
    sim.discharge(dt.datetime(2026, 3, 12, 9, 0, tzinfo=OSLO))
    assert sim.of(TaskKind.START_HOME_CARE).due_at == end_of_day(dt.date(2026, 3, 12))


@pytest.mark.parametrize("need", [Need.SHORT_TERM_BED, Need.NURSING_HOME])
def test_bed_need_gives_allocate_short_term_bed_due_within_one_day(need: Need) -> None:
    sim = Sim()
    sim.notice(need)
    task = sim.of(TaskKind.ALLOCATE_SHORT_TERM_BED)
    assert (task.unit, task.due_at) == ("SHORT_TERM_BED", end_of_day(dt.date(2026, 3, 11)))


def test_assistive_aids_without_answer_are_due_in_one_working_day_at_nav() -> None:
    sim = Sim()
    sim.notice(Need.ASSISTIVE_AIDS)
    task = sim.of(TaskKind.ORDER_ASSISTIVE_AIDS)
    assert (task.unit, task.due_at) == ("NAV", end_of_day(dt.date(2026, 3, 11)))


def test_assistive_aids_are_due_before_the_expected_ready_date_of_the_answer() -> None:
    sim = Sim()
    sim.notice(Need.ASSISTIVE_AIDS)
    sim.feed(
        event(
            EventKind.MUNICIPALITY_ANSWERED,
            can_receive=False,
            expected_ready_date=dt.date(2026, 3, 16),
        )
    )
    assert sim.of(TaskKind.ORDER_ASSISTIVE_AIDS).due_at == start_of_day(dt.date(2026, 3, 16))


def test_reception_with_rehabilitation_need_gives_intake_two_working_days_after_reception() -> None:
    sim = Sim()
    sim.notice(Need.REHABILITATION)
    wednesday_before_easter = dt.datetime(2026, 4, 1, 12, 0, tzinfo=OSLO)
    sim.discharge(wednesday_before_easter)
    task = sim.of(TaskKind.REHABILITATION_INTAKE)
    assert (task.unit, task.due_at) == ("INNSATSTEAM", end_of_day(dt.date(2026, 4, 8)))


def test_reception_without_rehabilitation_need_gives_no_intake() -> None:
    sim = Sim()
    sim.notice(Need.HOME_NURSING)
    sim.discharge(TUESDAY)
    assert not [t for t in sim.tasks.values() if t.kind is TaskKind.REHABILITATION_INTAKE]


def test_reception_gives_gp_follow_up_visit_due_in_14_days() -> None:
    sim = Sim()
    sim.notice()
    sim.discharge(TUESDAY)
    task = sim.of(TaskKind.FOLLOW_UP_VISIT)
    assert (task.unit, task.due_at) == ("GP", end_of_day(dt.date(2026, 3, 24)))


def test_rehabilitation_start_gives_reassessment_due_at_end_of_four_week_period() -> None:
    sim = Sim()
    sim.notice(Need.REHABILITATION)
    sim.discharge(TUESDAY)
    sim.feed(to=Stage.REHABILITATION, at=dt.datetime(2026, 3, 12, 8, 0, tzinfo=OSLO))
    task = sim.of(TaskKind.REASSESS_DECISION)
    assert (task.unit, task.due_at) == ("HEALTH_OFFICE", end_of_day(dt.date(2026, 4, 9)))


# ------------------------------------------------------------------- lifecycle rules
def test_municipality_answer_marks_the_answer_hospital_task_done() -> None:
    sim = Sim()
    sim.notice()
    sim.feed(event(EventKind.MUNICIPALITY_ANSWERED, can_receive=True))
    assert sim.of(TaskKind.ANSWER_HOSPITAL).status is TaskStatus.DONE


def test_withdrawal_cancels_open_reception_tasks_with_the_reason() -> None:
    sim = Sim()
    sim.notice(Need.HOME_NURSING, Need.SHORT_TERM_BED, Need.ASSISTIVE_AIDS)
    sim.feed(event(EventKind.DISCHARGE_READY_WITHDRAWN), to=Stage.ADMITTED)
    assert {(t.status, t.cancel_reason.split(":")[0]) for t in sim.tasks.values()} == {
        (TaskStatus.CANCELLED, "discharge-ready notice withdrawn")
    }


def test_withdrawal_leaves_the_assessment_open() -> None:
    sim = Sim()
    sim.feed(event(EventKind.ADMISSION_NOTIFIED, needs=(Need.HOME_NURSING,)), to=Stage.ADMITTED)
    sim.notice(Need.HOME_NURSING)
    sim.feed(event(EventKind.DISCHARGE_READY_WITHDRAWN), to=Stage.ADMITTED)
    assert sim.of(TaskKind.ASSESS_AND_PLAN).status is TaskStatus.OPEN


def test_new_notice_after_withdrawal_creates_a_new_answer_task() -> None:
    sim = Sim()
    sim.notice()
    sim.feed(event(EventKind.DISCHARGE_READY_WITHDRAWN), to=Stage.ADMITTED)
    sim.notice()
    statuses = sorted(t.status for t in sim.tasks.values() if t.kind is TaskKind.ANSWER_HOSPITAL)
    assert statuses == [TaskStatus.CANCELLED, TaskStatus.OPEN]


def test_death_cancels_every_open_task_of_the_episode() -> None:
    sim = Sim()
    sim.notice(Need.HOME_NURSING, Need.ASSISTIVE_AIDS)
    sim.feed(event(EventKind.DIED), to=Stage.CLOSED)
    assert {t.status for t in sim.tasks.values()} == {TaskStatus.CANCELLED}


def test_closing_cancels_the_remaining_open_tasks() -> None:
    sim = Sim()
    sim.notice(Need.REHABILITATION)
    sim.discharge(TUESDAY)
    sim.feed(to=Stage.CLOSED, at=TUESDAY + dt.timedelta(days=3))
    open_tasks = [t for t in sim.tasks.values() if t.active]
    assert open_tasks == []


def test_reception_cancels_an_unanswered_answer_hospital_task() -> None:
    sim = Sim()
    sim.notice()
    sim.discharge(TUESDAY + dt.timedelta(hours=2))
    assert sim.of(TaskKind.ANSWER_HOSPITAL).status is TaskStatus.CANCELLED


def test_reprocessing_the_same_trigger_creates_no_second_task() -> None:
    sim = Sim()
    cause = event(EventKind.DISCHARGE_READY_NOTIFIED, ready_at=TUESDAY)
    sim.feed(cause, to=Stage.DISCHARGE_READY)
    again = sim.feed(cause, to=Stage.DISCHARGE_READY)
    assert again == []


def test_task_id_is_episode_kind_and_trigger_event() -> None:
    sim = Sim()
    cause = event(EventKind.DISCHARGE_READY_NOTIFIED, ready_at=TUESDAY)
    (task,) = sim.feed(cause, to=Stage.DISCHARGE_READY)
    assert task.task_id == f"{EP}:ANSWER_HOSPITAL:{cause.event_id}"


# ------------------------------------------------------------------------ escalation
def test_overdue_open_task_is_escalated_to_the_unit_lead() -> None:
    sim = Sim()
    sim.notice()
    (escalated,) = overdue(sim.tasks.values(), TUESDAY + dt.timedelta(days=1))
    assert (escalated.escalated, escalated.escalated_to) == (True, "HEALTH_OFFICE/lead")


def test_escalated_task_is_not_escalated_again() -> None:
    sim = Sim()
    sim.notice()
    first = overdue(sim.tasks.values(), TUESDAY + dt.timedelta(days=1))
    assert overdue(first, TUESDAY + dt.timedelta(days=2)) == []


def test_task_not_yet_due_is_not_escalated() -> None:
    sim = Sim()
    sim.notice()
    assert overdue(sim.tasks.values(), TUESDAY + dt.timedelta(hours=1)) == []


def test_done_task_is_not_escalated() -> None:
    sim = Sim()
    sim.notice()
    sim.feed(event(EventKind.MUNICIPALITY_ANSWERED, can_receive=True))
    assert overdue(sim.tasks.values(), TUESDAY + dt.timedelta(days=5)) == []


# ------------------------------------------------------------------ task transitions
def test_claiming_a_task_claimed_by_someone_else_is_refused() -> None:
    sim = Sim()
    (task,) = sim.notice()
    claimed = task.claim("kari", TUESDAY)
    with pytest.raises(TaskStateError, match="already claimed by kari"):
        claimed.claim("ola", TUESDAY)


def test_completing_a_cancelled_task_is_refused() -> None:
    sim = Sim()
    (task,) = sim.notice()
    cancelled = task.cancel("moot", TUESDAY)
    with pytest.raises(TaskStateError, match="CANCELLED"):
        cancelled.complete(TUESDAY)


def test_every_change_increments_the_task_version() -> None:
    sim = Sim()
    (task,) = sim.notice()
    assert task.claim("kari", TUESDAY).complete(TUESDAY).version == 3


# ------------------------------------------------------------ per-municipality override
def test_stavanger_routes_a_patient_to_one_of_its_four_health_offices() -> None:
    sim = Sim(STAVANGER, pseudonym="p-0f3a")
    sim.notice()
    unit = sim.of(TaskKind.ANSWER_HOSPITAL).unit
    assert unit in {
        "HEALTH_OFFICE/EIGANES_TASTA",
        "HEALTH_OFFICE/HUNDVAAG_STORHAUG",
        "HEALTH_OFFICE/MADLA_HILLEVAAG",
        "HEALTH_OFFICE/HINNA_HAALAND",
    }


def test_stavanger_office_choice_is_stable_for_a_patient() -> None:
    units = set()
    for _ in range(3):
        sim = Sim(STAVANGER, pseudonym="p-same-patient")
        sim.notice()
        units.add(sim.of(TaskKind.ANSWER_HOSPITAL).unit)
    assert len(units) == 1


def test_stavanger_spreads_patients_over_all_four_offices() -> None:
    units = set()
    for i in range(60):
        sim = Sim(STAVANGER, pseudonym=f"p-{i}")
        sim.notice()
        units.add(sim.of(TaskKind.ANSWER_HOSPITAL).unit)
    assert len(units) == 4


def test_stavanger_rehabilitation_intake_goes_to_ikart() -> None:
    sim = Sim(STAVANGER)
    sim.notice(Need.REHABILITATION)
    sim.discharge(TUESDAY)
    assert sim.of(TaskKind.REHABILITATION_INTAKE).unit == "IKART"


def test_municipality_without_override_uses_the_default_rules() -> None:
    assert BOOK.for_municipality("4601") is BOOK.for_municipality("")


def test_override_rehab_period_changes_the_reassessment_due_date() -> None:
    data = merge_rule_data(_default_data(), {"settings": {"rehab_period_days": 42}})
    assert parse_rule_set(data).rehab_period_days == 42


def test_override_can_disable_a_default_rule() -> None:
    data = merge_rule_data(_default_data(), {"rules": {"gp-follow-up": {"enabled": False}}})
    kinds = {r.task for r in parse_rule_set(data).rules}
    assert TaskKind.FOLLOW_UP_VISIT not in kinds


def test_unknown_due_rule_is_rejected_naming_the_rule() -> None:
    data = merge_rule_data(_default_data(), {"rules": {"answer-hospital": {"due": "soonish"}}})
    with pytest.raises(RuleError, match=r"rules\.answer-hospital\.due"):
        parse_rule_set(data)


def test_unknown_unit_kind_is_rejected() -> None:
    data = merge_rule_data(_default_data(), {"rules": {"answer-hospital": {"unit": "POLICE"}}})
    with pytest.raises(RuleError, match=r"rules\.answer-hospital\.unit"):
        parse_rule_set(data)


def test_default_rule_file_has_one_rule_per_row_of_the_domain_table() -> None:
    rules = BOOK.for_municipality("").rules
    assert sorted(r.task.value for r in rules) == sorted(k.value for k in TaskKind)


def _default_data() -> dict[str, Any]:
    with (PACKAGED_RULES / "default.toml").open("rb") as handle:
        return tomllib.load(handle)


def test_task_id_with_a_long_trigger_id_stays_within_128_characters() -> None:
    long_trigger = "task:" + "x" * 120 + ":pathway"
    task_id = task_id_for("123456789:" + "e" * 64, TaskKind.REASSESS_DECISION, long_trigger)
    assert len(task_id) <= 128


def test_second_notice_supersedes_the_open_answer_task_of_the_first() -> None:
    sim = Sim()
    (first,) = sim.notice()
    sim.notice(at=TUESDAY + dt.timedelta(hours=3))
    assert sim.tasks[first.task_id].cancel_reason == "superseded by a new discharge-ready notice"
