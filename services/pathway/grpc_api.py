"""gRPC PathwayService: intake of hospital events and reads of the pathway projection."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, NoReturn

import grpc

from overgang.codec import EPISODE_ID
from overgang.events import EpisodeEvent
from overgang.grpc.auth import Authenticator, Role
from overgang.grpc.errors import FieldViolation, abort_invalid
from overgang.logging import get_logger
from overgang.v1 import pathway_pb2, pathway_pb2_grpc
from pathway.convert import division_name, stage_of
from pathway.domain.national_id import InvalidNationalId, NationalId, validate_national_id
from pathway.domain.patient import PatientProblem, episode_patient
from pathway.domain.state_machine import IllegalTransition
from pathway.store import EventIdConflict, ListFilter, PathwayStore
from pathway.validation import event_violations, list_violations
from pathway.watch import Broadcaster

log = get_logger(__name__)

SERVICE_NAME = "overgang.v1.PathwayService"
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
        violations, after = list_violations(request)
        if violations:
            await abort_invalid(context, violations)
        filters = ListFilter(
            stage=stage_of(request.stage),
            municipality=request.municipality,
            unit=request.unit,
            division=division_name(request.division),
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
