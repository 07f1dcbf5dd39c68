"""gRPC PathwayService: intake of hospital events and reads of the pathway projection.

Scope (`overgang.grpc.roles`): a hospital submits and reads its own HER-id's episodes (the
episode id's prefix), a coordinator reads its municipality's, finance sees no pathway
details, ops everything. Lists and watches are narrowed to the caller's scope; a filter
outside it is PERMISSION_DENIED. No response carries a national id: the proto has no
field for one (`Pathway` holds only the pseudonym).

Every read of a pathway and every refused call is an audit record (`overgang.audit`);
an unexpected error (the database) is INTERNAL with a reference, its details in the
redacted log only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, NoReturn

import grpc

from overgang.audit import Audit, audited_rpc
from overgang.codec import EPISODE_ID
from overgang.config import load_settings
from overgang.events import EpisodeEvent
from overgang.grpc.auth import (
    Authenticator,
    Caller,
    ListingScope,
    Role,
    listing_scope,
    may_read_episode,
    may_see_pathway_details,
    may_submit_for_hospital,
)
from overgang.grpc.errors import FieldViolation, abort_invalid
from overgang.logging import get_logger
from overgang.plausibility import Windows, load_windows
from overgang.v1 import pathway_pb2, pathway_pb2_grpc
from pathway.convert import division_name, stage_of
from pathway.domain.national_id import InvalidNationalId, NationalId, validate_national_id
from pathway.domain.patient import PatientProblem
from pathway.domain.state_machine import IllegalTransition
from pathway.listing import ListFilter
from pathway.store import EventIdConflict, PathwayStore
from pathway.validation import event_violations, list_violations
from pathway.watch import Broadcaster

log = get_logger(__name__)

SERVICE_NAME = "overgang.v1.PathwayService"
Context = Any  # grpc.aio.ServicerContext (untyped library)


async def _abort(context: Context, code: Any, message: str) -> NoReturn:
    await context.abort(code, message)
    raise AssertionError("unreachable")  # context.abort raises


def _her_id(episode_id: str) -> str:
    """The HER-id an episode id starts with; "" for a malformed id."""
    return episode_id.partition(":")[0] if EPISODE_ID.match(episode_id) else ""


def _may_read(role: Role, pathway: pathway_pb2.Pathway) -> bool:
    return may_read_episode(role, pathway.municipality, pathway.her_id)


def _query(filters: ListFilter) -> dict[str, object]:
    """A list query as its audit record names it."""
    stage = filters.stage.value if filters.stage is not None else ""
    return {
        "stage": stage,
        "municipality": filters.municipality,
        "unit": filters.unit,
        "division": filters.division,
        "herId": filters.her_id,
    }


def _narrowed(role: Role, municipality: str) -> ListingScope | None:
    """What a list or watch is narrowed to: the caller's scope and the request's
    municipality filter; None when that filter asks for what no episode in scope has."""
    scope = listing_scope(role)
    if municipality and not may_read_episode(role, municipality, scope.her_id):
        return None
    return ListingScope(municipality or scope.municipality, scope.her_id)


class PathwayServicer(pathway_pb2_grpc.PathwayServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        store: PathwayStore,
        auth: Authenticator,
        municipalities: Mapping[str, str],
        broadcaster: Broadcaster,
        on_commit: Callable[[], None] = lambda: None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        *,
        audit: Audit | None = None,
        windows: Windows | None = None,
    ) -> None:
        """`audit`: default log lines (`LogAuditSink`); `windows`: default
        OVERGANG_PLAUSIBILITY_FILE's, else the built-in ones."""
        self.store = store
        self.auth = auth
        self.municipalities = municipalities
        self.broadcaster = broadcaster
        self.on_commit = on_commit
        self.clock = clock
        self.audit = audit or Audit("pathway", clock=clock)
        if auth.audit is None:
            auth.audit = self.audit
        self.windows = windows or load_windows(load_settings().plausibility_file or None)

    @audited_rpc
    async def SubmitHospitalEvent(
        self, request: pathway_pb2.SubmitHospitalEventRequest, context: Context
    ) -> pathway_pb2.SubmitHospitalEventResponse:
        her_id = _her_id(request.event.episode_id)
        # ops may submit for any hospital (also every caller when auth is off). A malformed
        # episode id is a field violation below; until then the role need only be one that
        # may submit for some hospital (its own).
        caller = await self.auth.require_caller(
            context,
            lambda role: may_submit_for_hospital(role, her_id or role.her_id),
            "submit hospital events for that HER-id",
        )
        national_id, first, id_violations = await self._national_id(request)
        violations: list[FieldViolation] = [("event", "is required")]
        event: EpisodeEvent | None = None
        if request.HasField("event"):
            violations, event = event_violations(
                request.event, self.municipalities, self.clock(), self.windows, first
            )
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
                identity=caller.identity,
            )
            await _abort(context, grpc.StatusCode.FAILED_PRECONDITION, exc.reason)
        if recorded.duplicate:
            log.info("pathway.event_duplicate", event_id=event.event_id, identity=caller.identity)
        else:
            self.on_commit()
            self.broadcaster.publish_local(recorded.announced)
            log.info(
                "pathway.event_accepted",
                event_id=event.event_id,
                episode_id=event.episode_id,
                kind=event.kind.value,
                stage=recorded.pathway.stage if recorded.pathway else None,
                identity=caller.identity,
            )
        response = pathway_pb2.SubmitHospitalEventResponse(
            event_id=event.event_id, duplicate=recorded.duplicate
        )
        if recorded.pathway is not None:
            response.pathway.CopyFrom(recorded.pathway)
        return response

    async def _national_id(
        self, request: pathway_pb2.SubmitHospitalEventRequest
    ) -> tuple[NationalId | None, dt.datetime | None, list[FieldViolation]]:
        """The valid national id, the episode's first event time (None: none yet, or no
        valid episode id) and the national id's violations."""
        national_id: NationalId | None = None
        violations: list[FieldViolation] = []
        if request.national_id:
            try:
                national_id = validate_national_id(request.national_id)
            except InvalidNationalId as exc:
                violations.append(("nationalId", str(exc)))
        episode_id = request.event.episode_id
        if not EPISODE_ID.match(episode_id):
            return national_id, None, violations
        facts = await asyncio.to_thread(self.store.intake_facts, episode_id, national_id)
        first, problem = facts
        if problem and not violations:
            violations.append((PatientProblem.field, problem))
        return (None if violations else national_id), first, violations

    @audited_rpc
    async def GetPathway(
        self, request: pathway_pb2.GetPathwayRequest, context: Context
    ) -> pathway_pb2.Pathway:
        caller = await self.auth.require_caller(context, may_see_pathway_details, "read pathways")
        if not request.episode_id:
            await abort_invalid(context, [("episodeId", "is required")])
        found = await asyncio.to_thread(self.store.get, request.episode_id)
        # An unknown episode is in scope only by what its id says (the HER-id), so it is
        # NOT_FOUND for ops and its hospital and PERMISSION_DENIED for anyone else: a
        # refusal does not tell whether another's episode exists.
        in_scope = (
            _may_read(caller.role, found)
            if found is not None
            else may_read_episode(caller.role, "", _her_id(request.episode_id))
        )
        if not in_scope:
            await self.auth.deny(
                context, caller, "read this pathway", episode_id=request.episode_id
            )
        detail = "" if found is not None else "not found"
        self.audit.read(context, caller, episode_id=request.episode_id, detail=detail)
        if found is None:
            await _abort(
                context, grpc.StatusCode.NOT_FOUND, f"no pathway for episode {request.episode_id}"
            )
        return found

    async def _scope(
        self, context: Context, caller: Caller, municipality: str, what: str
    ) -> ListingScope:
        scope = _narrowed(caller.role, municipality)
        if scope is None:
            await self.auth.deny(context, caller, f"{what} of another municipality")
        return scope

    @audited_rpc
    async def ListPathways(
        self, request: pathway_pb2.ListPathwaysRequest, context: Context
    ) -> pathway_pb2.ListPathwaysResponse:
        caller = await self.auth.require_caller(context, may_see_pathway_details, "list pathways")
        violations, after = list_violations(request)
        if violations:
            await abort_invalid(context, violations)
        scope = await self._scope(context, caller, request.municipality, "list pathways")
        filters = ListFilter(
            stage=stage_of(request.stage),
            municipality=scope.municipality,
            unit=request.unit,
            division=division_name(request.division),
            her_id=scope.her_id,
        )
        found, token = await asyncio.to_thread(
            self.store.list_pathways, filters, request.page_size, after
        )
        pathways = [p for p in found if _may_read(caller.role, p)]  # the SQL filter did it
        self.audit.read(
            context,
            caller,
            episode_ids=[p.episode_id for p in pathways],
            query=_query(filters),
        )
        return pathway_pb2.ListPathwaysResponse(pathways=pathways, next_page_token=token)

    @audited_rpc
    async def WatchPathways(
        self, request: pathway_pb2.WatchPathwaysRequest, context: Context
    ) -> AsyncIterator[pathway_pb2.PathwayEvent]:
        caller = await self.auth.require_caller(context, may_see_pathway_details, "watch pathways")
        scope = await self._scope(context, caller, request.municipality, "watch pathways")
        stage = request.stage
        municipality = scope.municipality
        division = request.division

        def accepts(event: pathway_pb2.PathwayEvent) -> bool:
            pathway = event.pathway
            return (
                (not stage or pathway.stage == stage or event.to_stage == stage)
                and (not municipality or pathway.municipality == municipality)
                and (not division or pathway.division == division)
                and _may_read(caller.role, pathway)
            )

        subscription = self.broadcaster.subscribe(accepts)
        query = {"stage": stage, "municipality": municipality, "division": division}
        self.audit.read(context, caller, query={**query, "herId": scope.her_id})
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
                self.audit.read(context, caller, episode_id=item.episode_id, query=query)
                yield item
        finally:
            self.broadcaster.unsubscribe(subscription)
