"""gRPC CoordinationService: task streams per unit, claim / complete, and the
municipality's answers (published as overgang.v1.Event via the outbox).

Scope (`overgang.grpc.roles`): a `coordinator:<kommunenummer>/<unit>` sees, claims and
completes only tasks of its municipality in its unit or a unit below it, and answers the
hospital / reports service ready only for episodes of its municipality (and with a task
of its units); `ops` everything. Refusals are PERMISSION_DENIED and name no patient data.

Task streams and refused calls are audit records (`overgang.audit`); answer and ready
times outside the plausibility windows (`overgang.plausibility`: against now, and against
the earliest trigger of the episode's tasks) are INVALID_ARGUMENT.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeAlias

import grpc

from coordination.convert import (
    answer_violations,
    municipal_event_id,
    ready_violations,
    task_to_proto,
    timestamp,
    unit_violations,
)
from coordination.domain.task import Task, TaskStateError
from coordination.store import Clock, Forbidden, TaskNotFound, TaskStore
from coordination.watch import UpdateSignal
from overgang.audit import Audit, audited_rpc
from overgang.codec import InvalidEvent, event_from_proto, event_to_proto
from overgang.config import load_settings
from overgang.events import Division, EpisodeEvent, EventKind
from overgang.grpc.auth import (
    Authenticator,
    Caller,
    Role,
    RoleKind,
    covers_unit,
    listing_scope,
    may_act_for_municipality,
)
from overgang.grpc.errors import FieldViolation, abort_invalid
from overgang.logging import get_logger
from overgang.plausibility import Windows, load_windows, timestamp_violations
from overgang.v1 import coordination_pb2, coordination_pb2_grpc

log = get_logger(__name__)
SERVICE_NAME = "overgang.v1.CoordinationService"

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def _coordinator_or_ops(role: Role) -> bool:
    return role.is_ops or role.kind is RoleKind.COORDINATOR


def _covers(caller: Caller) -> Callable[[Task], bool]:
    """Tasks the caller may claim and complete: of its municipality and units."""
    return lambda task: covers_unit(caller.role, task.municipality, task.unit)


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
        audit: Audit | None = None,
        windows: Windows | None = None,
    ) -> None:
        """`audit`: default log lines (`LogAuditSink`); `windows`: default
        OVERGANG_PLAUSIBILITY_FILE's, else the built-in ones."""
        self.store = store
        self.auth = auth
        self.clock = clock
        self.signal = signal
        self._on_commit = on_commit
        self.poll_seconds = poll_seconds
        self.audit = audit or Audit("coordination", clock=clock)
        if auth.audit is None:
            auth.audit = self.audit
        self.windows = windows or load_windows(load_settings().plausibility_file or None)

    # ----------------------------------------------------------------------- streaming
    @audited_rpc
    async def StreamTasks(
        self, request: coordination_pb2.StreamTasksRequest, context: Context
    ) -> AsyncIterator[coordination_pb2.TaskUpdate]:
        caller = await self.auth.require_caller(context, _coordinator_or_ops, "stream tasks")
        violations = unit_violations(request.unit)
        if request.after_sequence < 0:
            violations.append(("afterSequence", "must not be negative"))
        if violations:
            await abort_invalid(context, violations)
        unit = request.unit
        municipality = listing_scope(caller.role).municipality  # "" for ops: every one
        if not covers_unit(caller.role, municipality, unit):
            await self.auth.deny(context, caller, f"stream unit {unit}")
        query = {"unit": unit, "municipality": municipality}
        self.audit.read(context, caller, query=query)
        last = request.after_sequence
        if last == 0:
            backlog, last = await asyncio.to_thread(self.store.backlog, unit, municipality)
            self.audit.shown(context, caller, (u.task.episode_id for u in backlog), query)
            for update in backlog:
                yield update
        while True:
            wake = self.signal.current()
            updates = await asyncio.to_thread(self.store.updates_after, unit, municipality, last)
            self.audit.shown(context, caller, (u.task.episode_id for u in updates), query)
            for update in updates:
                yield update
                last = update.sequence
            if not updates:
                # In-process commits wake us at once; the poll covers other writers.
                await self.signal.wait(wake, self.poll_seconds)

    # -------------------------------------------------------------------- claim/complete
    @audited_rpc
    async def ClaimTask(
        self, request: coordination_pb2.ClaimTaskRequest, context: Context
    ) -> coordination_pb2.Task:
        caller = await self.auth.require_caller(context, _coordinator_or_ops, "claim tasks")
        if not request.task_id:
            await abort_invalid(context, [("taskId", "is required")])
        # The claimant is the caller's identity (its token's name). The request's free-text
        # `coordinator` field is ignored, not checked: it stays in the proto for old clients
        # (the demo fills it in), but no one claims a task in another's name.
        return await self._transition(
            context, caller, "claim this task", self.store.claim, request.task_id, caller.identity
        )

    @audited_rpc
    async def CompleteTask(
        self, request: coordination_pb2.CompleteTaskRequest, context: Context
    ) -> coordination_pb2.Task:
        caller = await self.auth.require_caller(context, _coordinator_or_ops, "complete tasks")
        violations: list[FieldViolation] = []
        if not request.task_id:
            violations.append(("taskId", "is required"))
        if len(request.note) > 1000:
            violations.append(("note", "must be at most 1000 characters"))
        if violations:
            await abort_invalid(context, violations)
        return await self._transition(
            context,
            caller,
            "complete this task",
            self.store.complete,
            request.task_id,
            request.note,
        )

    async def _transition(
        self,
        context: Context,
        caller: Caller,
        what: str,
        step: Callable[[str, str, Callable[[Task], bool]], Task],
        task_id: str,
        argument: str,
    ) -> coordination_pb2.Task:
        try:
            task = await asyncio.to_thread(step, task_id, argument, _covers(caller))
        except TaskNotFound as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
            raise AssertionError("unreachable") from exc
        except Forbidden:
            await self.auth.deny(context, caller, what)
        except TaskStateError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            raise AssertionError("unreachable") from exc
        self._on_commit()
        return task_to_proto(task)

    # ------------------------------------------------------------- municipal answers
    @audited_rpc
    async def AnswerHospital(
        self, request: coordination_pb2.AnswerHospitalRequest, context: Context
    ) -> coordination_pb2.MunicipalEventAccepted:
        caller = await self.auth.require_caller(context, _coordinator_or_ops, "answer the hospital")
        now = self.clock()
        answered_at = timestamp(request, "answered_at", now)
        violations, expected = answer_violations(request, answered_at, now)
        violations += timestamp_violations("answeredAt", answered_at, now=now, windows=self.windows)
        if violations:
            await abort_invalid(context, violations)
        event_id = municipal_event_id(
            "coord-answer",
            request,
            "answered_at",
            request.episode_id,
            str(request.can_receive),
            request.expected_ready_date,
            answered_at.isoformat(),
        )
        return await self._publish(
            context,
            caller,
            request.episode_id,
            event_id,
            ("answeredAt", answered_at),
            EventKind.MUNICIPALITY_ANSWERED,
            can_receive=request.can_receive,
            expected_ready_date=expected,
        )

    @audited_rpc
    async def ReportServiceReady(
        self, request: coordination_pb2.ReportServiceReadyRequest, context: Context
    ) -> coordination_pb2.MunicipalEventAccepted:
        caller = await self.auth.require_caller(
            context, _coordinator_or_ops, "report service ready"
        )
        now = self.clock()
        ready_at = timestamp(request, "ready_at", now)
        violations = ready_violations(request, ready_at, now)
        violations += timestamp_violations("readyAt", ready_at, now=now, windows=self.windows)
        if violations:
            await abort_invalid(context, violations)
        event_id = municipal_event_id(
            "coord-ready", request, "ready_at", request.episode_id, ready_at.isoformat()
        )
        kind, occurred = EventKind.SERVICE_READY, ("readyAt", ready_at)
        return await self._publish(context, caller, request.episode_id, event_id, occurred, kind)

    async def _publish(
        self,
        context: Context,
        caller: Caller,
        episode_id: str,
        event_id: str,
        occurred: tuple[str, dt.datetime],
        kind: EventKind,
        **payload: Any,
    ) -> coordination_pb2.MunicipalEventAccepted:
        """`occurred`: the request's time field and its value."""
        field, occurred_at = occurred
        episode = await asyncio.to_thread(self.store.episode, episode_id)
        if episode is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"episode {episode_id} is not known")
            raise AssertionError("unreachable")
        # The episode's municipality, as coordination learnt it from the pathway: a
        # coordinator of another municipality must not stop this one's payment clock.
        if not may_act_for_municipality(caller.role, episode.municipality):
            await self.auth.deny(context, caller, "act for an episode of another municipality")
        tasks = await asyncio.to_thread(self.store.tasks_of, episode_id)
        # And, as before, a coordinator of a unit with a task.
        if not caller.role.is_ops and not any(map(_covers(caller), tasks)):
            await self.auth.deny(context, caller, "act for an episode its units have no task of")
        first = min((t.trigger_at for t in tasks), default=None)  # the earliest we know of
        early = timestamp_violations(
            field, occurred_at, now=self.clock(), windows=self.windows, first_event_at=first
        )
        if early:
            await abort_invalid(context, early)
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
            identity=caller.identity,
        )
        return coordination_pb2.MunicipalEventAccepted(event_id=event_id)


def register(servicer: CoordinationServicer) -> Callable[[grpc.aio.Server], None]:
    def _register(server: grpc.aio.Server) -> None:
        coordination_pb2_grpc.add_CoordinationServiceServicer_to_server(servicer, server)

    return _register
