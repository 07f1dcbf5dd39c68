"""gRPC PathwayService: intake of hospital events and reads of the pathway projection."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, NoReturn

import grpc

from overgang.codec import EPISODE_ID, MUNICIPALITY, InvalidEvent, event_from_proto
from overgang.events import MUNICIPAL_KINDS, EpisodeEvent
from overgang.grpc.auth import Authenticator, Role
from overgang.grpc.errors import FieldViolation, abort_invalid
from overgang.logging import get_logger
from overgang.v1 import events_pb2, pathway_pb2, pathway_pb2_grpc
from overgang.vocabulary import Stage
from pathway.convert import decode_page_token
from pathway.domain.national_id import InvalidNationalId, NationalId, validate_national_id
from pathway.domain.patient import PatientProblem, episode_patient
from pathway.domain.state_machine import IllegalTransition
from pathway.store import EventIdConflict, ListFilter, PathwayStore
from pathway.watch import Broadcaster

log = get_logger(__name__)

SERVICE_NAME = "overgang.v1.PathwayService"
MAX_FUTURE = dt.timedelta(minutes=5)
MAX_REPAIRS = 20
Context = Any  # grpc.aio.ServicerContext (untyped library)


async def _abort(context: Context, code: Any, message: str) -> NoReturn:
    await context.abort(code, message)
    raise AssertionError("unreachable")  # context.abort raises


def _may_submit(role: Role) -> bool:
    # ops may submit on behalf of any hospital (also the role of every caller when auth is off).
    return role.name in {"hospital", "ops"}


def _may_read(_role: Role) -> bool:
    return True  # hospitals are limited to their own episodes below


def _owns(role: Role, episode_id: str) -> bool:
    return role.name != "hospital" or episode_id.startswith(f"{role.scope}:")


def _repair(msg: events_pb2.Event, path: str) -> bool:
    """Make the field `event_from_proto` complained about valid, so the next pass finds
    the next problem: every violation is reported at once, with the codec's own rules."""
    if path == "eventId":
        msg.event_id = "placeholder"
    elif path == "episodeId":
        msg.episode_id = "0:placeholder"
    elif path == "occurredAt":
        msg.occurred_at.GetCurrentTime()
    elif path == "municipality":
        msg.municipality = "0000"
    elif path == "division":
        msg.division = events_pb2.SOMATIC
    elif path == "payload":
        msg.admitted.SetInParent()
    elif path.startswith("admissionNotified.expectedNeeds"):
        _drop_unspecified(msg.admission_notified.expected_needs)
    elif path.startswith("dischargeReadyNotified.needs"):
        _drop_unspecified(msg.discharge_ready_notified.needs)
    elif path == "dischargeReadyNotified.readyAt":
        msg.discharge_ready_notified.ready_at.CopyFrom(msg.occurred_at)
    elif path == "municipalityAnswered.expectedReadyDate":
        msg.municipality_answered.expected_ready_date = ""
    elif path == "discharged.destination":
        msg.discharged.destination = events_pb2.Discharged.HOME
    else:
        return False
    return True


def _drop_unspecified(values: Any) -> None:
    kept = [v for v in values if v != events_pb2.NEED_UNSPECIFIED]
    del values[:]
    values.extend(kept)


def event_violations(
    msg: events_pb2.Event, municipalities: Mapping[str, str], now: dt.datetime
) -> tuple[list[FieldViolation], EpisodeEvent | None]:
    """All violations of a submitted event (paths under `event.`), or the valid event."""
    violations: list[FieldViolation] = []
    work = events_pb2.Event()
    work.CopyFrom(msg)
    event: EpisodeEvent | None = None
    for _ in range(MAX_REPAIRS):
        try:
            event = event_from_proto(work)
            break
        except InvalidEvent as exc:
            violations.append((f"event.{exc.field}", exc.reason))
            if not _repair(work, exc.field):
                break
    flagged = {path for path, _ in violations}
    if (
        "event.municipality" not in flagged
        and MUNICIPALITY.match(msg.municipality)
        and msg.municipality not in municipalities
    ):
        violations.append(
            ("event.municipality", f"{msg.municipality} is not a municipality this service serves")
        )
    if (
        "event.occurredAt" not in flagged
        and msg.HasField("occurred_at")
        and msg.occurred_at.ToDatetime(tzinfo=dt.UTC) > now + MAX_FUTURE
    ):
        violations.append(("event.occurredAt", "is more than 5 minutes in the future"))
    if event is not None and event.kind in MUNICIPAL_KINDS:
        violations.append(
            (f"event.{event.kind.value}", "is a municipal event: a hospital may not submit it")
        )
    return violations, (event if not violations else None)


def _stage_filter(value: pathway_pb2.Stage.ValueType) -> Stage | None:
    if value == pathway_pb2.STAGE_UNSPECIFIED:
        return None
    return Stage(pathway_pb2.Stage.Name(value).removeprefix("STAGE_"))


class PathwayServicer(pathway_pb2_grpc.PathwayServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        store: PathwayStore,
        auth: Authenticator,
        municipalities: Mapping[str, str],
        broadcaster: Broadcaster,
        on_commit: Callable[[], None] = lambda: None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.store = store
        self.auth = auth
        self.municipalities = municipalities
        self.broadcaster = broadcaster
        self.on_commit = on_commit
        self.clock = clock

    async def SubmitHospitalEvent(
        self, request: pathway_pb2.SubmitHospitalEventRequest, context: Context
    ) -> pathway_pb2.SubmitHospitalEventResponse:
        role = await self.auth.require(context, _may_submit, "submit hospital events")
        episode_id = request.event.episode_id
        if EPISODE_ID.match(episode_id) and not _owns(role, episode_id):
            await _abort(
                context,
                grpc.StatusCode.PERMISSION_DENIED,
                f"role {role} may only submit episodes of HER-id {role.scope}",
            )
        violations: list[FieldViolation] = []
        event: EpisodeEvent | None = None
        if not request.HasField("event"):
            violations.append(("event", "is required"))
        else:
            violations, event = event_violations(request.event, self.municipalities, self.clock())
        national_id, id_violations = await self._national_id(request)
        violations.extend(id_violations)
        if violations or event is None:
            await abort_invalid(context, violations)
        try:
            recorded = await asyncio.to_thread(
                self.store.record_event,
                event,
                source="grpc",
                national_id=national_id,
                intake=True,
            )
        except PatientProblem as exc:
            await abort_invalid(context, [(PatientProblem.field, str(exc))])
        except EventIdConflict as exc:
            await abort_invalid(context, [(f"event.{EventIdConflict.field}", str(exc))])
        except IllegalTransition as exc:
            log.info(
                "pathway.event_rejected",
                event_id=event.event_id,
                episode_id=event.episode_id,
                reason=exc.reason,
                role=str(role),
            )
            await _abort(context, grpc.StatusCode.FAILED_PRECONDITION, exc.reason)
        if recorded.duplicate:
            log.info("pathway.event_duplicate", event_id=event.event_id, role=str(role))
        else:
            self.on_commit()
            self.broadcaster.publish(recorded.announced)
            log.info(
                "pathway.event_accepted",
                event_id=event.event_id,
                episode_id=event.episode_id,
                kind=event.kind.value,
                stage=recorded.pathway.stage if recorded.pathway else None,
                role=str(role),
            )
        response = pathway_pb2.SubmitHospitalEventResponse(
            event_id=event.event_id, duplicate=recorded.duplicate
        )
        if recorded.pathway is not None:
            response.pathway.CopyFrom(recorded.pathway)
        return response

    async def _national_id(
        self, request: pathway_pb2.SubmitHospitalEventRequest
    ) -> tuple[NationalId | None, list[FieldViolation]]:
        national_id: NationalId | None = None
        if request.national_id:
            try:
                national_id = validate_national_id(request.national_id)
            except InvalidNationalId as exc:
                return None, [("nationalId", str(exc))]
        episode_id = request.event.episode_id
        if not EPISODE_ID.match(episode_id):
            return national_id, []
        known, on_episode = await asyncio.to_thread(self.store.episode_patient, episode_id)
        given = self.store.pseudonym(national_id) if national_id is not None else None
        try:
            episode_patient(on_episode, given, required=not known)
        except PatientProblem as exc:
            return None, [(PatientProblem.field, str(exc))]
        return national_id, []

    async def GetPathway(
        self, request: pathway_pb2.GetPathwayRequest, context: Context
    ) -> pathway_pb2.Pathway:
        role = await self.auth.require(context, _may_read, "read pathways")
        if not request.episode_id:
            await abort_invalid(context, [("episodeId", "is required")])
        if not _owns(role, request.episode_id):
            log.info(
                "audit.pathway_read",
                role=str(role),
                episode_id=request.episode_id,
                outcome="denied",
            )
            await _abort(
                context,
                grpc.StatusCode.PERMISSION_DENIED,
                f"role {role} may only read its own episodes",
            )
        found = await asyncio.to_thread(self.store.get, request.episode_id)
        log.info(
            "audit.pathway_read",
            role=str(role),
            episode_id=request.episode_id,
            outcome="found" if found is not None else "not_found",
        )
        if found is None:
            await _abort(
                context, grpc.StatusCode.NOT_FOUND, f"no pathway for episode {request.episode_id}"
            )
        return found

    async def ListPathways(
        self, request: pathway_pb2.ListPathwaysRequest, context: Context
    ) -> pathway_pb2.ListPathwaysResponse:
        role = await self.auth.require(context, _may_read, "read pathways")
        violations: list[FieldViolation] = []
        after = ""
        if request.page_size < 0:
            violations.append(("pageSize", "must not be negative"))
        if request.page_token:
            try:
                after = decode_page_token(request.page_token)
            except ValueError as exc:
                violations.append(("pageToken", str(exc)))
        if request.municipality and not MUNICIPALITY.match(request.municipality):
            violations.append(("municipality", "must be a four-digit kommunenummer"))
        if violations:
            await abort_invalid(context, violations)
        filters = ListFilter(
            stage=_stage_filter(request.stage),
            municipality=request.municipality,
            unit=request.unit,
            division=(
                events_pb2.Division.Name(request.division)
                if request.division != events_pb2.DIVISION_UNSPECIFIED
                else ""
            ),
            her_id=role.scope if role.name == "hospital" else "",
        )
        pathways, token = await asyncio.to_thread(
            self.store.list_pathways, filters, request.page_size, after
        )
        log.info(
            "audit.pathway_list",
            role=str(role),
            episode_ids=[p.episode_id for p in pathways],
        )
        return pathway_pb2.ListPathwaysResponse(pathways=pathways, next_page_token=token)

    async def WatchPathways(
        self, request: pathway_pb2.WatchPathwaysRequest, context: Context
    ) -> AsyncIterator[pathway_pb2.PathwayEvent]:
        role = await self.auth.require(context, _may_read, "watch pathways")
        stage = request.stage
        municipality = request.municipality
        division = request.division

        def accepts(event: pathway_pb2.PathwayEvent) -> bool:
            pathway = event.pathway
            return (
                (not stage or pathway.stage == stage or event.to_stage == stage)
                and (not municipality or pathway.municipality == municipality)
                and (not division or pathway.division == division)
                and _owns(role, event.episode_id)
            )

        subscription = self.broadcaster.subscribe(accepts)
        log.info("audit.pathway_watch", role=str(role), stage=stage, municipality=municipality)
        try:
            # Headers go out once the subscription exists: a client that has them
            # will see every later change.
            await context.send_initial_metadata(())
            while True:
                item = await subscription.queue.get()
                if item is None:
                    if subscription.overflowed:
                        await _abort(
                            context,
                            grpc.StatusCode.RESOURCE_EXHAUSTED,
                            "watcher fell too far behind; reconnect and re-read with ListPathways",
                        )
                    return
                yield item
        finally:
            self.broadcaster.unsubscribe(subscription)
