"""LiabilityService.DisputeDays and ResolveDispute (mixed into `LiabilityServicer`).

Disputes live in the shared SQL database, so any worker records them; checking the days
needs the episode's statement, read as GetEpisode reads it (this worker's clock or the
owner's answer). The clock is never touched: a dispute is shown beside the days.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any, TypeAlias

import grpc

from discharge.convert import dispute as dispute_message
from discharge.convert import episode_statement
from discharge.disputes_store import DisputeStore
from discharge.domain.disputes import (
    AlreadyResolved,
    Dispute,
    DisputeState,
    check_days,
    held_days,
    id_violations,
    parse_days,
    text_violations,
)
from discharge.domain.live_clock import ClockEntry
from discharge.domain.statement import Statement
from overgang.audit import Audit, audited_rpc
from overgang.codec import EPISODE_ID
from overgang.grpc.auth import (
    Authenticator,
    Caller,
    may_dispute_for_municipality,
    may_resolve_for_hospital,
)
from overgang.grpc.errors import abort_invalid
from overgang.v1 import liability_pb2 as pb

Context: TypeAlias = Any  # grpc.aio.ServicerContext
_RESOLUTIONS = {
    pb.DISPUTE_ACCEPTED: DisputeState.ACCEPTED,
    pb.DISPUTE_REJECTED: DisputeState.REJECTED,
}


def payers_of(statement: pb.EpisodeStatement) -> dict[dt.date, str]:
    """Each liable day of the statement and the municipality paying it (its period's)."""
    found: dict[dt.date, str] = {}
    for day in statement.days:
        for period in statement.periods:
            if (
                period.days
                and period.start <= day.date
                and (not period.end or day.date < period.end)
            ):
                found[dt.date.fromisoformat(day.date)] = period.municipality
                break
    return found


class DisputeRpcs:
    auth: Authenticator
    audit: Audit
    disputes: DisputeStore | None
    now: Callable[[], dt.datetime]

    async def _find_episode(
        self, episode_id: str, context: Context
    ) -> pb.EpisodeStatement | ClockEntry:
        raise NotImplementedError

    async def _dispute_store(self, context: Context) -> DisputeStore:
        if self.disputes is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this worker keeps no disputes")
            raise AssertionError("unreachable")
        return self.disputes

    async def _episode_statement(self, episode_id: str, context: Context) -> pb.EpisodeStatement:
        found = await self._find_episode(episode_id, context)
        if isinstance(found, pb.EpisodeStatement):
            return found
        statement = found.announced or Statement(found.episode_id, "", found.as_of, ())
        return episode_statement(statement, found.error)

    async def _repeat(
        self, context: Context, caller: Caller, existing: Dispute, request: pb.DisputeDaysRequest
    ) -> pb.Dispute:
        """A dispute id already recorded: the same request again answers it."""
        if not may_dispute_for_municipality(caller.role, existing.municipality):
            await self.auth.deny(
                context, caller, "see that dispute", episode_id=existing.episode_id
            )
        days, _ = parse_days(list(request.days))
        if not existing.same_request(request.episode_id, days, request.reason):
            await context.abort(
                grpc.StatusCode.ALREADY_EXISTS,
                f"dispute {existing.dispute_id} exists with other content: choose a new id",
            )
        return dispute_message(existing)

    @audited_rpc
    async def DisputeDays(self, request: pb.DisputeDaysRequest, context: Context) -> pb.Dispute:
        caller = await self.auth.authenticate(context)
        store = await self._dispute_store(context)
        days, violations = parse_days(list(request.days))
        violations = [*id_violations(request.dispute_id), *violations]
        if not EPISODE_ID.match(request.episode_id):
            violations.append(("episodeId", "must be '<HER-id>:<local number>'"))
        violations.extend(text_violations("reason", request.reason))
        if violations:
            await abort_invalid(context, violations)
        municipality = caller.role.municipality
        if not may_dispute_for_municipality(caller.role, municipality):  # ops: any payer
            await self.auth.deny(
                context, caller, "dispute liable days", episode_id=request.episode_id
            )
        existing = await asyncio.to_thread(store.get, request.dispute_id)
        if existing is not None:
            return await self._repeat(context, caller, existing, request)
        statement = await self._episode_statement(request.episode_id, context)
        payers = payers_of(statement)
        if municipality and municipality not in payers.values():
            await self.auth.deny(
                context, caller, "dispute days of this episode", episode_id=request.episode_id
            )
        others = await asyncio.to_thread(store.of_episodes, [request.episode_id])
        verdict = check_days(
            days, payers, municipality, held_days(others.get(request.episode_id, []))
        )
        if verdict.foreign:
            await self.auth.deny(
                context,
                caller,
                "dispute days another municipality pays",
                episode_id=request.episode_id,
            )
        if verdict.violations:
            await abort_invalid(context, verdict.violations)
        new = Dispute(
            dispute_id=request.dispute_id,
            episode_id=request.episode_id,
            municipality=verdict.payer,
            days=days,
            reason=request.reason,
            opened_at=self.now(),
            opened_by=caller.identity,
        )
        recorded = await asyncio.to_thread(store.add, new)
        if recorded is not new:  # another worker recorded this id a moment ago
            return await self._repeat(context, caller, recorded, request)
        self.audit.read(
            context,
            caller,
            episode_id=request.episode_id,
            detail=f"dispute {new.dispute_id} opened",
        )
        return dispute_message(recorded)

    @audited_rpc
    async def ResolveDispute(
        self, request: pb.ResolveDisputeRequest, context: Context
    ) -> pb.Dispute:
        caller = await self.auth.authenticate(context)
        store = await self._dispute_store(context)
        violations = id_violations(request.dispute_id)
        if request.resolution not in _RESOLUTIONS:
            violations.append(("resolution", "must be DISPUTE_ACCEPTED or DISPUTE_REJECTED"))
        violations.extend(text_violations("note", request.note))
        if violations:
            await abort_invalid(context, violations)
        existing = await asyncio.to_thread(store.get, request.dispute_id)
        if existing is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such dispute")
            raise AssertionError("unreachable")
        her_id = existing.episode_id.partition(":")[0]
        if not may_resolve_for_hospital(caller.role, her_id):
            await self.auth.deny(
                context, caller, "resolve this dispute", episode_id=existing.episode_id
            )
        state = _RESOLUTIONS[request.resolution]
        try:
            resolved = await asyncio.to_thread(
                store.resolve, request.dispute_id, state, request.note, caller.identity, self.now()
            )
        except AlreadyResolved as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            raise AssertionError("unreachable") from None
        assert resolved is not None  # disputes are never deleted
        self.audit.read(
            context,
            caller,
            episode_id=existing.episode_id,
            detail=f"dispute {existing.dispute_id} {state.value.lower()}",
        )
        return dispute_message(resolved)
