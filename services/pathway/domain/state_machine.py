"""The patient pathway as a pure state machine, and the fold that makes it deterministic.

    ADMITTED -> DISCHARGE_READY -> RECEIVED -> REHABILITATION -> FOLLOW_UP -> CLOSED

Hospital and municipal events (`EpisodeEvent`) move the early stages; completed
coordination tasks (`TaskCompleted`) move the later ones. `transition` decides one step
and raises `IllegalTransition` with a human reason; `fold` replays every input of an
episode in event-time order (`sort_key`, duplicates by id removed), skipping and
reporting the illegal ones, so the projection never depends on the order in which
Kafka delivered the inputs. No Kafka, gRPC or SQL here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from overgang.events import (
    KIND_ORDER,
    Destination,
    Division,
    EpisodeEvent,
    EventKind,
    Need,
)
from overgang.vocabulary import Stage, TaskKind

OPEN_STAGES = frozenset(Stage) - {Stage.CLOSED}

# The coordination task kinds whose completion moves the pathway.
STAGE_MOVING_TASKS = frozenset(
    {TaskKind.REHABILITATION_INTAKE, TaskKind.REASSESS_DECISION, TaskKind.FOLLOW_UP_VISIT}
)


# Destinations where the municipality receives the patient into its services.
MUNICIPAL_DESTINATIONS = frozenset(
    {Destination.HOME, Destination.SHORT_TERM_BED, Destination.NURSING_HOME, Destination.HOUSING}
)
# Task completions sort after every hospital/municipal event at the same instant.
TASK_RANK = len(KIND_ORDER)


@dataclass(frozen=True)
class TaskCompleted:
    """A coordination task reported DONE. `event_id` is stable per task (one completion)."""

    event_id: str
    episode_id: str
    task_id: str
    kind: TaskKind
    occurred_at: dt.datetime  # time-zone aware

    def sort_key(self) -> tuple[dt.datetime, int, str]:
        return (self.occurred_at, TASK_RANK, self.event_id)


PathwayInput = EpisodeEvent | TaskCompleted


def input_name(item: PathwayInput) -> str:
    if isinstance(item, TaskCompleted):
        return f"task {item.kind.value} done"
    return item.kind.value


class IllegalTransition(ValueError):
    """An input that the pathway's current stage does not allow; `reason` is for humans."""

    def __init__(self, reason: str, stage: Stage | None, item: PathwayInput) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stage = stage
        self.item = item


def _stage_text(stage: Stage | None) -> str:
    return "not started (no admitted event yet)" if stage is None else stage.value


def _require(item: PathwayInput, stage: Stage | None, allowed: Iterable[Stage]) -> None:
    allowed = sorted(allowed, key=list(Stage).index)
    if stage in allowed:
        return
    if len(allowed) == 1:
        need = f"stage {allowed[0].value}"
    elif set(allowed) == OPEN_STAGES:
        need = "an open pathway"
    else:
        need = "stage " + " or ".join(s.value for s in allowed)
    raise IllegalTransition(
        f"{input_name(item)} needs {need}, pathway is {_stage_text(stage)}", stage, item
    )


@dataclass(frozen=True)
class Transition:
    """One accepted step: the stage before and after, and why."""

    from_stage: Stage | None
    to_stage: Stage
    reason: str


def transition(stage: Stage | None, needs: Iterable[Need], item: PathwayInput) -> Transition:
    """The single step `item` makes from `stage`; raises `IllegalTransition`.

    `needs` are the municipal needs recorded so far (they decide where a discharge goes).
    """
    if isinstance(item, TaskCompleted):
        return _task_transition(stage, item)
    kind = item.kind
    if kind is EventKind.ADMITTED:
        if stage is not None:
            raise IllegalTransition(
                f"admitted needs a new episode, pathway is {stage.value}", stage, item
            )
        return Transition(None, Stage.ADMITTED, "admitted")
    if kind is EventKind.ADMISSION_NOTIFIED:
        # A notice sent after the discharge-ready notice is late, not illegal: the clock
        # needs it as evidence (it voids or delays liability), so it is kept, no move.
        _require(item, stage, [Stage.ADMITTED, Stage.DISCHARGE_READY])
        assert stage is not None
        reason = "admission notice: expected needs recorded"
        if stage is Stage.DISCHARGE_READY:
            reason = "late admission notice (after the discharge-ready notice)"
        return Transition(stage, stage, reason)
    if kind is EventKind.DISCHARGE_READY_NOTIFIED:
        _require(item, stage, [Stage.ADMITTED])
        return Transition(stage, Stage.DISCHARGE_READY, "discharge-ready notice")
    if kind in (EventKind.MUNICIPALITY_ANSWERED, EventKind.SERVICE_READY):
        _require(item, stage, [Stage.DISCHARGE_READY])
        answered = kind is EventKind.MUNICIPALITY_ANSWERED
        text = "municipality answered" if answered else "municipal service ready"
        return Transition(stage, Stage.DISCHARGE_READY, text)
    if kind is EventKind.DISCHARGE_READY_WITHDRAWN:
        _require(item, stage, [Stage.DISCHARGE_READY])
        return Transition(stage, Stage.ADMITTED, "discharge-ready notice withdrawn")
    if kind is EventKind.DISCHARGED:
        _require(item, stage, [Stage.ADMITTED, Stage.DISCHARGE_READY])
        destination = item.destination
        dest = destination.value if destination is not None else "unknown destination"
        if stage is Stage.ADMITTED:
            return Transition(stage, Stage.CLOSED, f"discharged to {dest} before discharge-ready")
        if destination in MUNICIPAL_DESTINATIONS and tuple(needs):
            return Transition(stage, Stage.RECEIVED, f"discharged to {dest}: municipality receives")
        return Transition(stage, Stage.CLOSED, f"discharged to {dest} without municipal services")
    if kind is EventKind.DIED:
        _require(item, stage, OPEN_STAGES)
        return Transition(stage, Stage.CLOSED, "died")
    if kind is EventKind.COOPERATION_MEETING_HELD:
        _require(item, stage, OPEN_STAGES)
        assert stage is not None
        return Transition(stage, stage, "cooperation meeting held")
    raise AssertionError(f"unhandled event kind {kind}")  # pragma: no cover


def _task_transition(stage: Stage | None, item: TaskCompleted) -> Transition:
    if item.kind is TaskKind.REHABILITATION_INTAKE:
        _require(item, stage, [Stage.RECEIVED])
        return Transition(stage, Stage.REHABILITATION, "rehabilitation intake done")
    if item.kind is TaskKind.REASSESS_DECISION:
        _require(item, stage, [Stage.REHABILITATION])
        return Transition(stage, Stage.FOLLOW_UP, "decision re-assessed after rehabilitation")
    _require(item, stage, [Stage.RECEIVED, Stage.FOLLOW_UP])
    return Transition(stage, Stage.CLOSED, "follow-up visit done")


@dataclass(frozen=True)
class HistoryEntry:
    """A stage change (only steps where the stage actually changed)."""

    from_stage: Stage | None
    to_stage: Stage
    at: dt.datetime
    cause_id: str
    reason: str


@dataclass(frozen=True)
class PathwayState:
    episode_id: str
    stage: Stage
    municipality: str = ""
    division: Division | None = None
    needs: tuple[Need, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
    updated_at: dt.datetime | None = None

    @property
    def her_id(self) -> str:
        return self.episode_id.partition(":")[0]


def apply(state: PathwayState | None, item: PathwayInput) -> tuple[PathwayState, Transition]:
    """Apply one input; raises `IllegalTransition` and leaves `state` untouched."""
    stage = state.stage if state is not None else None
    needs = state.needs if state is not None else ()
    if state is not None and item.episode_id != state.episode_id:
        raise IllegalTransition(
            f"{input_name(item)} belongs to episode {item.episode_id}, not {state.episode_id}",
            stage,
            item,
        )
    step = transition(stage, needs, item)
    new = state or PathwayState(episode_id=item.episode_id, stage=step.to_stage)
    changes: dict[str, object] = {"stage": step.to_stage, "updated_at": item.occurred_at}
    if isinstance(item, EpisodeEvent):
        changes["municipality"] = item.municipality
        changes["division"] = item.division
        # A late admission notice must not overwrite the needs of the discharge notice.
        early_notice = item.kind is EventKind.ADMISSION_NOTIFIED and (
            step.from_stage is Stage.ADMITTED or not needs
        )
        if early_notice or (item.kind is EventKind.DISCHARGE_READY_NOTIFIED and item.needs):
            changes["needs"] = item.needs
    if step.from_stage != step.to_stage:
        entry = HistoryEntry(
            step.from_stage, step.to_stage, item.occurred_at, item.event_id, step.reason
        )
        changes["history"] = (*new.history, entry)
    return replace(new, **changes), step  # type: ignore[arg-type]


@dataclass(frozen=True)
class Step:
    """What the fold did with one input: accepted (with its transition) or rejected."""

    item: PathwayInput
    from_stage: Stage | None
    to_stage: Stage | None
    rejected: str | None = None

    @property
    def accepted(self) -> bool:
        return self.rejected is None


@dataclass(frozen=True)
class Fold:
    state: PathwayState | None
    steps: tuple[Step, ...] = field(default=())

    @property
    def stage(self) -> Stage | None:
        return self.state.stage if self.state is not None else None

    @property
    def rejected(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if not s.accepted)

    def step_for(self, event_id: str) -> Step | None:
        for step in self.steps:
            if step.item.event_id == event_id:
                return step
        return None


def ordered(items: Iterable[PathwayInput]) -> list[PathwayInput]:
    """Deduplicated by id (the first in event-time order wins) and sorted by `sort_key`."""
    unique: dict[str, PathwayInput] = {}
    for item in sorted(items, key=lambda i: i.sort_key()):
        unique.setdefault(item.event_id, item)
    return list(unique.values())


def fold(items: Iterable[PathwayInput]) -> Fold:
    """The pathway of one episode from all its inputs, in any order, with duplicates.

    Illegal inputs are skipped and reported in `Fold.steps` (`rejected` holds the reason);
    the result is the same for every permutation and duplication of the same inputs.
    """
    state: PathwayState | None = None
    steps: list[Step] = []
    for item in ordered(items):
        before = state.stage if state is not None else None
        try:
            state, _ = apply(state, item)
        except IllegalTransition as exc:
            steps.append(Step(item, before, before, exc.reason))
            continue
        steps.append(Step(item, before, state.stage))
    return Fold(state, tuple(steps))
