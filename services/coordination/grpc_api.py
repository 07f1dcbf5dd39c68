"""gRPC CoordinationService: task streams per unit, claim / complete, and the
municipality's answers (published as overgang.v1.Event via the outbox)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeAlias

import grpc

from coordination.convert import task_to_proto
from coordination.domain.task import Task, TaskStateError, UnitKind, unit_matches
from coordination.store import Clock, Forbidden, TaskNotFound, TaskStore
from coordination.watch import UpdateSignal
from overgang.codec import EPISODE_ID, InvalidEvent, event_from_proto, event_to_proto
from overgang.events import Division, EpisodeEvent, EventKind, oslo_day
from overgang.grpc.auth import Authenticator, Role
from overgang.grpc.errors import FieldViolation, abort_invalid
from overgang.logging import get_logger
from overgang.v1 import coordination_pb2, coordination_pb2_grpc

log = get_logger(__name__)
SERVICE_NAME = "overgang.v1.CoordinationService"
UNIT = re.compile(r"^[A-Z0-9_]{1,64}(/[A-Z0-9_]{1,64})*$")
FUTURE_SLACK = dt.timedelta(minutes=5)

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def _coordinator_or_ops(role: Role) -> bool:
    return role.name in {"ops", "coordinator"}


def _covers(role: Role) -> Callable[[str], bool]:
    """Units the caller may see and act on: ops all, coordinator:<unit> its unit and
    sub-units."""
    if role.name == "ops":
        return lambda _unit: True
    return lambda unit: role.name == "coordinator" and unit_matches(unit, role.scope)


def _validate_unit(unit: str) -> list[FieldViolation]:
    if not unit:
        return [("unit", "is required, e.g. HEALTH_OFFICE or HEALTH_OFFICE/MADLA_HILLEVAAG")]
    if not UNIT.match(unit):
        return [("unit", "must be <UNIT_KIND>[/<OFFICE>] in [A-Z0-9_]")]
    if unit.split("/")[0] not in UnitKind.__members__:
        kinds = ", ".join(UnitKind.__members__)
        return [("unit", f"must start with a unit kind: {kinds}")]
    return []


def _timestamp(msg: Any, name: str, default: dt.datetime) -> dt.datetime:
    if msg.HasField(name):
        return getattr(msg, name).ToDatetime(tzinfo=dt.UTC)  # type: ignore[no-any-return]
    return default


def _event_id(prefix: str, *parts: str) -> str:
    return f"{prefix}-{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:32]}"


class CoordinationServicer(coordination_pb2_grpc.CoordinationServiceServicer):
    """Field-violation paths are the requests' proto JSON names (camelCase)."""

    def __init__(
        self,
        store: TaskStore,
        auth: Authenticator,
        clock: Clock,
        *,
        signal: UpdateSignal,
        on_commit: Callable[[], None] = lambda: None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.auth = auth
        self.clock = clock
        self.signal = signal
        self._on_commit = on_commit
        self.poll_seconds = poll_seconds

    # ----------------------------------------------------------------------- streaming
    async def StreamTasks(
        self, request: coordination_pb2.StreamTasksRequest, context: Context
    ) -> AsyncIterator[coordination_pb2.TaskUpdate]:
        role = await self.auth.require(context, _coordinator_or_ops, "stream tasks")
        violations = _validate_unit(request.unit)
        if request.after_sequence < 0:
            violations.append(("afterSequence", "must not be negative"))
        if violations:
            await abort_invalid(context, violations)
        if not _covers(role)(request.unit):
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, f"role {role} may not stream unit {request.unit}"
            )
        unit = request.unit
        last = request.after_sequence
        if last == 0:
            backlog, last = await asyncio.to_thread(self.store.backlog, unit)
            for update in backlog:
                yield update
        while True:
            wake = self.signal.current()
            updates = await asyncio.to_thread(self.store.updates_after, unit, last)
            for update in updates:
                yield update
                last = update.sequence
            if not updates:
                # In-process commits wake us at once; the poll covers other writers.
                await self.signal.wait(wake, self.poll_seconds)

    # -------------------------------------------------------------------- claim/complete
    async def ClaimTask(
        self, request: coordination_pb2.ClaimTaskRequest, context: Context
    ) -> coordination_pb2.Task:
        role = await self.auth.require(context, _coordinator_or_ops, "claim tasks")
        violations: list[FieldViolation] = []
        if not request.task_id:
            violations.append(("taskId", "is required"))
        by = request.coordinator or (role.scope if role.name == "coordinator" else "")
        if not by:
            violations.append(("coordinator", "is required (who claims the task)"))
        elif len(by) > 200:
            violations.append(("coordinator", "must be at most 200 characters"))
        if violations:
            await abort_invalid(context, violations)
        return await self._transition(context, self.store.claim, request.task_id, by, _covers(role))

    async def CompleteTask(
        self, request: coordination_pb2.CompleteTaskRequest, context: Context
    ) -> coordination_pb2.Task:
        role = await self.auth.require(context, _coordinator_or_ops, "complete tasks")
        violations: list[FieldViolation] = []
        if not request.task_id:
            violations.append(("taskId", "is required"))
        if len(request.note) > 1000:
            violations.append(("note", "must be at most 1000 characters"))
        if violations:
            await abort_invalid(context, violations)
        return await self._transition(
            context, self.store.complete, request.task_id, request.note, _covers(role)
        )

    async def _transition(
        self, context: Context, step: Callable[..., Task], *args: Any
    ) -> coordination_pb2.Task:
        try:
            task = await asyncio.to_thread(step, *args)
        except TaskNotFound as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
            raise AssertionError("unreachable") from exc
        except Forbidden as exc:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
            raise AssertionError("unreachable") from exc
        except TaskStateError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            raise AssertionError("unreachable") from exc
        self._on_commit()
        return task_to_proto(task)

    # ------------------------------------------------------------- municipal answers
    async def AnswerHospital(
        self, request: coordination_pb2.AnswerHospitalRequest, context: Context
    ) -> coordination_pb2.MunicipalEventAccepted:
        role = await self.auth.require(context, _coordinator_or_ops, "answer the hospital")
        now = self.clock()
        answered_at = _timestamp(request, "answered_at", now)
        violations = self._episode_violations(request.episode_id)
        expected: dt.date | None = None
        text = request.expected_ready_date
        if not text and not request.can_receive:
            violations.append(
                ("expectedReadyDate", "is required when the municipality cannot receive")
            )
        elif text:
            try:
                if len(text) != 10:
                    raise ValueError(text)
                expected = dt.date.fromisoformat(text)
            except ValueError:
                violations.append(("expectedReadyDate", "must be a date YYYY-MM-DD"))
        if answered_at > now + FUTURE_SLACK:
            violations.append(("answeredAt", "must not be in the future"))
        if expected is not None and expected < oslo_day(answered_at):
            violations.append(("expectedReadyDate", "must not be before the day of the answer"))
        if violations:
            await abort_invalid(context, violations)
        if request.HasField("answered_at"):
            event_id = _event_id(
                "coord-answer",
                request.episode_id,
                str(request.can_receive),
                text,
                answered_at.isoformat(),
            )
        else:
            event_id = f"coord-answer-{uuid.uuid4().hex}"
        return await self._publish(
            context,
            role,
            request.episode_id,
            event_id,
            answered_at,
            EventKind.MUNICIPALITY_ANSWERED,
            can_receive=request.can_receive,
            expected_ready_date=expected,
        )

    async def ReportServiceReady(
        self, request: coordination_pb2.ReportServiceReadyRequest, context: Context
    ) -> coordination_pb2.MunicipalEventAccepted:
        role = await self.auth.require(context, _coordinator_or_ops, "report service ready")
        now = self.clock()
        ready_at = _timestamp(request, "ready_at", now)
        violations = self._episode_violations(request.episode_id)
        if ready_at > now + FUTURE_SLACK:
            violations.append(("readyAt", "must not be in the future"))
        if violations:
            await abort_invalid(context, violations)
        if request.HasField("ready_at"):
            event_id = _event_id("coord-ready", request.episode_id, ready_at.isoformat())
        else:
            event_id = f"coord-ready-{uuid.uuid4().hex}"
        return await self._publish(
            context, role, request.episode_id, event_id, ready_at, EventKind.SERVICE_READY
        )

    @staticmethod
    def _episode_violations(episode_id: str) -> list[FieldViolation]:
        if not episode_id:
            return [("episodeId", "is required")]
        if not EPISODE_ID.match(episode_id):
            return [("episodeId", "must be '<HER-id digits>:<local episode number>'")]
        return []

    async def _publish(
        self,
        context: Context,
        role: Role,
        episode_id: str,
        event_id: str,
        occurred_at: dt.datetime,
        kind: EventKind,
        **payload: Any,
    ) -> coordination_pb2.MunicipalEventAccepted:
        episode = await asyncio.to_thread(self.store.episode, episode_id)
        if episode is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"episode {episode_id} is not known")
            raise AssertionError("unreachable")
        if role.name != "ops":
            covers = _covers(role)
            tasks = await asyncio.to_thread(self.store.tasks_of, episode_id)
            if not any(covers(t.unit) for t in tasks):
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"role {role} has no task for episode {episode_id}",
                )
        if episode.division not in Division.__members__:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"episode {episode_id} has no known division yet",
            )
        event = EpisodeEvent(
            event_id=event_id,
            episode_id=episode_id,
            occurred_at=occurred_at,
            municipality=episode.municipality,
            division=Division(episode.division),
            kind=kind,
            **payload,
        )
        try:
            event_from_proto(event_to_proto(event))  # the same contract every consumer checks
        except InvalidEvent as exc:
            await abort_invalid(context, [(exc.field, exc.reason)])
        await asyncio.to_thread(self.store.publish_event, event)
        self._on_commit()
        log.info(
            "coordination.municipal_event",
            episode_id=episode_id,
            kind=kind.value,
            event_id=event_id,
        )
        return coordination_pb2.MunicipalEventAccepted(event_id=event_id)


def register(servicer: CoordinationServicer) -> Callable[[grpc.aio.Server], None]:
    def _register(server: grpc.aio.Server) -> None:
        coordination_pb2_grpc.add_CoordinationServiceServicer_to_server(servicer, server)

    return _register
