"""LiabilityService: what the clock has announced, per episode, running, per month."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, TypeAlias

import grpc

from discharge.convert import episode_statement, liable_day
from discharge.domain.clock import PeriodStatus, Statement
from discharge.streams import ClockStreams
from overgang.codec import EPISODE_ID, MUNICIPALITY
from overgang.grpc.auth import Authenticator, Role
from overgang.grpc.errors import abort_invalid
from overgang.v1 import liability_pb2 as pb
from overgang.v1 import liability_pb2_grpc

Context: TypeAlias = Any  # grpc.aio.ServicerContext (grpc ships no type hints)
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _may_read(role: Role) -> bool:
    return role.name in {"ops", "finance"}


def _empty(entry_id: str, municipality: str, as_of: dt.date) -> Statement:
    return Statement(entry_id, municipality, as_of, ())


class LiabilityServicer(liability_pb2_grpc.LiabilityServiceServicer):
    def __init__(self, clock: ClockStreams, auth: Authenticator) -> None:
        self.clock = clock
        self.auth = auth

    async def GetEpisode(
        self, request: pb.GetEpisodeRequest, context: Context
    ) -> pb.EpisodeStatement:
        await self.auth.require(context, _may_read, "read liability")
        if not EPISODE_ID.match(request.episode_id):
            await abort_invalid(context, [("episodeId", "must be '<HER-id>:<local number>'")])
        entry = self.clock.store.get(request.episode_id)
        if entry is None and not self.clock.owns(request.episode_id):
            partition = self.clock.partition_of(request.episode_id)
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"partition {partition} of episode {request.episode_id} is served by another "
                "discharge worker (or is being rebalanced): ask that worker or retry",
            )
            raise AssertionError("unreachable")
        if entry is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"no clock for episode {request.episode_id}"
            )
            raise AssertionError("unreachable")
        statement = entry.announced or _empty(entry.episode_id, "", entry.as_of)
        return episode_statement(statement, entry.error)

    async def ListRunningClocks(
        self, request: pb.ListRunningClocksRequest, context: Context
    ) -> pb.ListRunningClocksResponse:
        await self.auth.require(context, _may_read, "read liability")
        if request.municipality and not MUNICIPALITY.match(request.municipality):
            await abort_invalid(context, [("municipality", "must be a four-digit kommunenummer")])
        running = [
            episode_statement(e.announced, e.error)
            for e in sorted(self.clock.store.entries(), key=lambda e: e.episode_id)
            if e.announced is not None
            and e.announced.status is PeriodStatus.RUNNING
            and request.municipality in ("", e.announced.municipality)
        ]
        return pb.ListRunningClocksResponse(episodes=running)

    async def GetMonthlyStatement(
        self, request: pb.GetMonthlyStatementRequest, context: Context
    ) -> pb.MonthlyStatement:
        await self.auth.require(context, _may_read, "read liability")
        violations = []
        if not MUNICIPALITY.match(request.municipality):
            violations.append(("municipality", "must be a four-digit kommunenummer"))
        if not MONTH.match(request.month):
            violations.append(("month", "must be YYYY-MM"))
        if violations:
            await abort_invalid(context, violations)
        statement = pb.MonthlyStatement(municipality=request.municipality, month=request.month)
        as_of: dt.date | None = None
        for entry in sorted(self.clock.store.entries(), key=lambda e: e.episode_id):
            if entry.announced is None:
                continue
            as_of = max(as_of or entry.as_of, entry.as_of)
            # Each period's payer is the municipality on its own notice.
            days = [
                day
                for period in entry.announced.periods
                if period.municipality == request.municipality
                for day in period.days
                if day.date.isoformat().startswith(request.month)
            ]
            if not days:
                continue
            line = pb.MonthlyStatementLine(
                episode_id=entry.episode_id,
                liable_days=len(days),
                amount_nok=sum(d.amount_nok for d in days),
                days=[liable_day(d) for d in days],
            )
            statement.lines.append(line)
            statement.liable_days += line.liable_days
            statement.amount_nok += line.amount_nok
        statement.as_of = as_of.isoformat() if as_of else ""
        return statement
