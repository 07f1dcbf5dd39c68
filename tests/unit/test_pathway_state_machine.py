"""The pathway state machine and its fold: one rule per test (domain.md, "The pathway")."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from overgang.events import (
    Destination,
    Division,
    EpisodeEvent,
    EventKind,
    Need,
)
from overgang.vocabulary import Stage, TaskKind
from pathway.domain.state_machine import (
    IllegalTransition,
    PathwayInput,
    TaskCompleted,
    apply,
    fold,
    transition,
)

EPISODE = "81234:E1"
T0 = dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.UTC)
_ids = itertools.count(1)


def ev(kind: EventKind, minutes: int = 0, **fields: object) -> EpisodeEvent:
    return EpisodeEvent(
        event_id=str(fields.pop("event_id", f"ev-{next(_ids)}")),
        episode_id=EPISODE,
        occurred_at=T0 + dt.timedelta(minutes=minutes),
        municipality=str(fields.pop("municipality", "1103")),
        division=Division.SOMATIC,
        kind=kind,
        **fields,  # type: ignore[arg-type]
    )


def task(kind: TaskKind, minutes: int) -> TaskCompleted:
    task_id = f"task-{next(_ids)}"
    return TaskCompleted(
        event_id=f"task:{task_id}:done",
        episode_id=EPISODE,
        task_id=task_id,
        kind=kind,
        occurred_at=T0 + dt.timedelta(minutes=minutes),
    )


def admitted(m: int = 0) -> EpisodeEvent:
    return ev(EventKind.ADMITTED, m)


def notice(m: int = 1, *needs: Need) -> EpisodeEvent:
    return ev(EventKind.ADMISSION_NOTIFIED, m, needs=tuple(needs))


def ready(m: int = 2, *needs: Need) -> EpisodeEvent:
    return ev(EventKind.DISCHARGE_READY_NOTIFIED, m, ready_at=T0, needs=tuple(needs))


def discharged(m: int, destination: Destination) -> EpisodeEvent:
    return ev(EventKind.DISCHARGED, m, destination=destination)


def stage_after(*items: PathwayInput) -> Stage | None:
    return fold(items).stage


def received_story() -> list[PathwayInput]:
    return [
        admitted(0),
        notice(1, Need.HOME_NURSING),
        ready(2, Need.HOME_NURSING, Need.REHABILITATION),
        discharged(3, Destination.HOME),
    ]


# --- hospital events -------------------------------------------------------------------


def test_admitted_opens_the_pathway_in_admitted() -> None:
    assert stage_after(admitted()) is Stage.ADMITTED


def test_admission_notice_keeps_admitted_and_records_expected_needs() -> None:
    result = fold([admitted(), notice(1, Need.SHORT_TERM_BED)])
    assert result.state is not None
    assert (result.stage, result.state.needs) == (Stage.ADMITTED, (Need.SHORT_TERM_BED,))


def test_discharge_ready_notice_moves_admitted_to_discharge_ready_with_its_needs() -> None:
    result = fold([admitted(), ready(2, Need.HOME_NURSING)])
    assert result.state is not None
    assert (result.stage, result.state.needs) == (Stage.DISCHARGE_READY, (Need.HOME_NURSING,))


def test_municipality_answer_keeps_discharge_ready() -> None:
    answer = ev(EventKind.MUNICIPALITY_ANSWERED, 3, can_receive=False)
    assert stage_after(admitted(), ready(), answer) is Stage.DISCHARGE_READY


def test_service_ready_keeps_discharge_ready() -> None:
    assert stage_after(admitted(), ready(), ev(EventKind.SERVICE_READY, 3)) is Stage.DISCHARGE_READY


def test_withdrawn_notice_moves_discharge_ready_back_to_admitted() -> None:
    withdrawn = ev(EventKind.DISCHARGE_READY_WITHDRAWN, 3)
    assert stage_after(admitted(), ready(), withdrawn) is Stage.ADMITTED


@pytest.mark.parametrize(
    "destination",
    [Destination.HOME, Destination.SHORT_TERM_BED, Destination.NURSING_HOME, Destination.HOUSING],
)
def test_discharge_to_municipal_care_with_needs_moves_to_received(destination: Destination) -> None:
    items = [admitted(), ready(2, Need.HOME_NURSING), discharged(3, destination)]
    assert stage_after(*items) is Stage.RECEIVED


@pytest.mark.parametrize("destination", [Destination.OTHER_HOSPITAL, Destination.OTHER])
def test_discharge_elsewhere_closes_the_pathway(destination: Destination) -> None:
    items = [admitted(), ready(2, Need.HOME_NURSING), discharged(3, destination)]
    assert stage_after(*items) is Stage.CLOSED


def test_discharge_home_without_municipal_needs_closes_the_pathway() -> None:
    assert stage_after(admitted(), ready(), discharged(3, Destination.HOME)) is Stage.CLOSED


def test_expected_needs_from_the_admission_notice_count_at_discharge() -> None:
    items = [admitted(), notice(1, Need.HOME_NURSING), ready(), discharged(3, Destination.HOME)]
    assert stage_after(*items) is Stage.RECEIVED


def test_discharge_without_discharge_ready_notice_closes_the_pathway() -> None:
    items = [admitted(), notice(1, Need.HOME_NURSING), discharged(3, Destination.HOME)]
    assert stage_after(*items) is Stage.CLOSED


@pytest.mark.parametrize(
    "before",
    [
        [admitted()],
        [admitted(), ready()],
        received_story(),
    ],
)
def test_death_closes_any_open_pathway(before: list[PathwayInput]) -> None:
    assert stage_after(*before, ev(EventKind.DIED, 10)) is Stage.CLOSED


def test_cooperation_meeting_does_not_change_the_stage() -> None:
    meeting = ev(EventKind.COOPERATION_MEETING_HELD, 3)
    assert stage_after(admitted(), ready(), meeting) is Stage.DISCHARGE_READY


# --- task completions ------------------------------------------------------------------


def test_rehabilitation_intake_done_moves_received_to_rehabilitation() -> None:
    items = [*received_story(), task(TaskKind.REHABILITATION_INTAKE, 10)]
    assert stage_after(*items) is Stage.REHABILITATION


def test_reassessed_decision_moves_rehabilitation_to_follow_up() -> None:
    items = [
        *received_story(),
        task(TaskKind.REHABILITATION_INTAKE, 10),
        task(TaskKind.REASSESS_DECISION, 20),
    ]
    assert stage_after(*items) is Stage.FOLLOW_UP


def test_follow_up_visit_done_closes_a_follow_up_pathway() -> None:
    items = [
        *received_story(),
        task(TaskKind.REHABILITATION_INTAKE, 10),
        task(TaskKind.REASSESS_DECISION, 20),
        task(TaskKind.FOLLOW_UP_VISIT, 30),
    ]
    assert stage_after(*items) is Stage.CLOSED


def test_follow_up_visit_done_closes_a_received_pathway() -> None:
    assert stage_after(*received_story(), task(TaskKind.FOLLOW_UP_VISIT, 10)) is Stage.CLOSED


# --- illegal transitions ---------------------------------------------------------------


def test_service_ready_before_discharge_ready_is_rejected_with_the_reason() -> None:
    with pytest.raises(IllegalTransition) as caught:
        transition(Stage.ADMITTED, (), ev(EventKind.SERVICE_READY))
    assert caught.value.reason == "serviceReady needs stage DISCHARGE_READY, pathway is ADMITTED"


def test_events_before_admitted_are_rejected() -> None:
    with pytest.raises(IllegalTransition, match="not started"):
        transition(None, (), ready())


def test_a_second_admitted_is_rejected() -> None:
    with pytest.raises(IllegalTransition, match="needs a new episode"):
        transition(Stage.ADMITTED, (), admitted())


def test_a_closed_pathway_accepts_nothing() -> None:
    with pytest.raises(IllegalTransition, match="pathway is CLOSED"):
        transition(Stage.CLOSED, (), ev(EventKind.DIED))


def test_withdrawal_without_a_notice_is_rejected() -> None:
    with pytest.raises(IllegalTransition, match="needs stage DISCHARGE_READY"):
        transition(Stage.ADMITTED, (), ev(EventKind.DISCHARGE_READY_WITHDRAWN))


def test_rehabilitation_intake_before_reception_is_rejected() -> None:
    with pytest.raises(IllegalTransition, match="needs stage RECEIVED, pathway is DISCHARGE_READY"):
        transition(Stage.DISCHARGE_READY, (), task(TaskKind.REHABILITATION_INTAKE, 0))


def test_apply_leaves_the_state_unchanged_on_an_illegal_event() -> None:
    state, _ = apply(None, admitted())
    with pytest.raises(IllegalTransition):
        apply(state, ev(EventKind.SERVICE_READY, 1))
    assert state.stage is Stage.ADMITTED


# --- the fold --------------------------------------------------------------------------


def test_fold_skips_and_reports_an_illegal_event() -> None:
    bad = ev(EventKind.SERVICE_READY, 1)
    result = fold([admitted(), bad])
    assert [(s.item.event_id, s.rejected) for s in result.rejected] == [
        (bad.event_id, "serviceReady needs stage DISCHARGE_READY, pathway is ADMITTED")
    ]


def test_fold_orders_by_event_time_not_arrival() -> None:
    late_arrival = ready(2, Need.HOME_NURSING)
    items = [discharged(3, Destination.HOME), late_arrival, admitted(0)]
    assert stage_after(*items) is Stage.RECEIVED


def test_fold_counts_a_duplicated_event_once() -> None:
    withdrawn = ev(EventKind.DISCHARGE_READY_WITHDRAWN, 3)
    result = fold([admitted(), ready(), withdrawn, withdrawn])
    assert len(result.steps) == 3


def test_fold_records_only_stage_changes_in_the_history() -> None:
    result = fold([admitted(), notice(1), ready(), ev(EventKind.COOPERATION_MEETING_HELD, 3)])
    assert result.state is not None
    assert [(h.from_stage, h.to_stage) for h in result.state.history] == [
        (None, Stage.ADMITTED),
        (Stage.ADMITTED, Stage.DISCHARGE_READY),
    ]


def test_fold_of_nothing_has_no_pathway() -> None:
    assert fold([]).state is None


STORY: list[PathwayInput] = [
    admitted(0),
    notice(1, Need.HOME_NURSING),
    ready(2, Need.HOME_NURSING),
    ev(EventKind.MUNICIPALITY_ANSWERED, 3, can_receive=False),
    ev(EventKind.DISCHARGE_READY_WITHDRAWN, 4),
    ready(5, Need.REHABILITATION),
    ev(EventKind.SERVICE_READY, 6),
    ev(EventKind.SERVICE_READY, 6),  # a second id at the same instant
    discharged(7, Destination.HOME),
    task(TaskKind.REHABILITATION_INTAKE, 8),
    task(TaskKind.FOLLOW_UP_VISIT, 8),  # illegal after intake: skipped
    task(TaskKind.REASSESS_DECISION, 9),
    ev(EventKind.COOPERATION_MEETING_HELD, 9),
    ev(EventKind.DIED, 30),
    ev(EventKind.DIED, 31),  # illegal: closed
]
EXPECTED = fold(STORY)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(STORY), min_size=0, max_size=40).flatmap(
        lambda extra: st.permutations([*STORY, *extra])
    )
)
def test_any_permutation_and_duplication_of_the_same_events_gives_the_same_pathway(
    arrival: list[PathwayInput],
) -> None:
    assert fold(arrival) == EXPECTED


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(STORY), min_size=1, max_size=25), st.randoms())
def test_any_subset_folds_to_the_same_stage_in_any_order(
    subset: list[PathwayInput], rng: object
) -> None:
    shuffled = list(subset)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert fold(shuffled).stage == fold(subset).stage


def test_late_admission_notice_is_kept_without_moving_a_discharge_ready_pathway() -> None:
    """The clock needs a late admission notice as evidence (it voids or delays the
    period), so the pathway accepts it in DISCHARGE_READY and keeps the notice's needs."""
    result = fold([admitted(0), ready(2, Need.SHORT_TERM_BED), notice(3, Need.HOME_NURSING)])
    assert result.state is not None
    assert (result.stage, result.state.needs, result.rejected) == (
        Stage.DISCHARGE_READY,
        (Need.SHORT_TERM_BED,),
        (),
    )
