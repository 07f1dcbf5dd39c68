"""LiabilityService: what the clock has announced, per episode, running, per month.

Any discharge worker answers: a call for an episode another worker owns is forwarded to
it, a call over all episodes is fanned out and merged (`peers.py`). Every answer is
scoped by the caller's role: a hospital sees its HER-id's episodes, a coordinator or
finance officer of a municipality the periods that municipality pays, ops everything.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc

from discharge.convert import episode_statement
from discharge.corrections_store import CorrectionLog
from discharge.disputes_grpc import DisputeRpcs
from discharge.disputes_store import DisputeStore
from discharge.domain.live_clock import ClockEntry
from discharge.domain.statement import PeriodStatus, Statement
from discharge.monthly import (
    add_corrections,
    add_disputes,
    archived_in_month,
    her_id_of,
    monthly_lines,
)
from discharge.peers import Peers, is_forwarded
from discharge.store import ClockArchive
from discharge.table import ClockTable
from overgang.audit import Audit, audited_rpc
from overgang.codec import EPISODE_ID, MUNICIPALITY
from overgang.grpc.auth import Authenticator, Caller, Role, may_read_statements
from overgang.grpc.errors import abort_invalid
from overgang.v1 import liability_pb2 as pb
from overgang.v1 import liability_pb2_grpc

Context: TypeAlias = Any  # grpc.aio.ServicerContext (grpc ships no type hints)
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
HER_ID = re.compile(r"^\d{1,9}$")
DEFAULT_PAGE, MAX_PAGE = 100, 1000


def _may_read_statement(role: Role, statement: Statement) -> bool:
    payers = {p.municipality for p in statement.periods} or {statement.municipality}
    her_id = her_id_of(statement.episode_id)
    return any(may_read_statements(role, municipality=m, her_id=her_id) for m in payers)


def _statement(entry: ClockEntry) -> Statement:
    return entry.announced or Statement(entry.episode_id, "", entry.as_of, ())


def _is_date(text: str) -> bool:
    try:
        return len(text) == 10 and bool(dt.date.fromisoformat(text))
    except ValueError:
        return False


def _page_token(episode_id: str) -> str:
    return base64.urlsafe_b64encode(episode_id.encode()).decode()


def _after(token: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode() if token else ""
    except (ValueError, UnicodeDecodeError):
        return None


async def _relay(context: Context, call: Awaitable[Any]) -> Any:
    """A forwarded call's answer, or its error as this call's error."""
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        await context.abort(exc.code(), exc.details() or "")
        raise AssertionError("unreachable") from None


class LiabilityServicer(DisputeRpcs, liability_pb2_grpc.LiabilityServiceServicer):
    def __init__(
        self,
        store: ClockTable,
        partition_of: Callable[[str], int],
        owns: Callable[[str], bool],
        served_partitions: Callable[[], set[int]],
        auth: Authenticator,
        peers: Peers | None = None,
        archive: ClockArchive | None = None,
        audit: Audit | None = None,
        disputes: DisputeStore | None = None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        corrections: CorrectionLog | None = None,
    ) -> None:
        self.store = store
        self.corrections = corrections
        self.disputes = disputes
        self.now = now
        self.archive = archive
        self.audit = audit or Audit("discharge")
        self.partition_of = partition_of
        self.owns = owns
        self.served_partitions = served_partitions
        self.auth = auth
        self.peers = peers

    def _audit_read(self, context: Context, caller: Caller, **what: Any) -> None:
        # A call a peer forwarded was recorded by the worker the caller asked.
        if not is_forwarded(context.invocation_metadata()):
            self.audit.read(context, caller, **what)

    def _served(self) -> list[ClockEntry]:
        """This worker's clocks of the partitions it serves (none while rebalancing)."""
        served = self.served_partitions()
        return [e for e in self.store.entries() if e.partition in served]

    def _routing(self, context: Context) -> Peers | None:
        """The other workers to ask, or None: answer from this worker's partitions only
        (a single worker, or a call a peer forwarded)."""
        if self.peers is None or is_forwarded(context.invocation_metadata()):
            return None
        return self.peers

    async def _fan_out(self, context: Context, method: str, request: Any) -> list[Any]:
        peers = self._routing(context)
        if peers is None:
            return []
        answers = peers.fan_out(method, request, context.invocation_metadata())
        return list(await _relay(context, answers))

    async def _archived(self, request: pb.GetMonthlyStatementRequest) -> list[ClockEntry]:
        if self.archive is None:
            return []
        return await archived_in_month(self.archive, request)

    async def _find_episode(
        self, episode_id: str, context: Context
    ) -> pb.EpisodeStatement | ClockEntry:
        """The episode's clock if this worker owns it, else the owner's answer to the
        same caller (which that worker authorised); NOT_FOUND / UNAVAILABLE otherwise."""
        # Ownership first: a local copy of a partition that moved away is frozen.
        if not self.owns(episode_id):
            partition = self.partition_of(episode_id)
            peers = self._routing(context)
            owner = peers.owner(partition) if peers else None
            if peers is not None and owner is not None and owner != peers.own_address:
                request = pb.GetEpisodeRequest(episode_id=episode_id)
                forward = peers.call(owner, "GetEpisode", request, context.invocation_metadata())
                answer: pb.EpisodeStatement = await _relay(context, forward)
                return answer
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"partition {partition} of the episode is being rebalanced between discharge "
                "workers: retry",
            )
        entry = self.store.get(episode_id)
        if entry is None and self.archive is not None:
            entry = await asyncio.to_thread(self.archive.get, episode_id)
        if entry is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no clock for this episode")
            raise AssertionError("unreachable")
        return entry

    @audited_rpc
    async def GetEpisode(
        self, request: pb.GetEpisodeRequest, context: Context
    ) -> pb.EpisodeStatement:
        caller = await self.auth.authenticate(context)
        if not EPISODE_ID.match(request.episode_id):
            await abort_invalid(context, [("episodeId", "must be '<HER-id>:<local number>'")])
        entry = await self._find_episode(request.episode_id, context)
        if isinstance(entry, pb.EpisodeStatement):
            return entry
        statement = _statement(entry)
        if not _may_read_statement(caller.role, statement):
            await self.auth.deny(
                context, caller, "read this episode's liability", episode_id=request.episode_id
            )
        self._audit_read(context, caller, episode_id=request.episode_id)
        return episode_statement(statement, entry.error)

    @audited_rpc
    async def ListRunningClocks(
        self, request: pb.ListRunningClocksRequest, context: Context
    ) -> pb.ListRunningClocksResponse:
        caller = await self.auth.authenticate(context)
        after = _after(request.page_token)
        violations = []
        if request.municipality and not MUNICIPALITY.match(request.municipality):
            violations.append(("municipality", "must be a four-digit kommunenummer"))
        if not 0 <= request.page_size <= MAX_PAGE:
            violations.append(("pageSize", f"must be between 0 and {MAX_PAGE}"))
        if after is None:
            violations.append(("pageToken", "is not a token this service gave out"))
        if violations:
            await abort_invalid(context, violations)
        role = caller.role
        if request.municipality and not may_read_statements(role, request.municipality):
            await self.auth.deny(context, caller, "read that municipality's clocks")
        running = [
            episode_statement(s, e.error)
            for e in self._served()
            if (s := _statement(e)).status is PeriodStatus.RUNNING
            and request.municipality in ("", s.municipality)
            and _may_read_statement(role, s)
        ]
        if self._routing(context) is None and self.peers is not None:
            return pb.ListRunningClocksResponse(episodes=running)  # all, for the peer asking
        for answer in await self._fan_out(context, "ListRunningClocks", request):
            running.extend(answer.episodes)
        running.sort(key=lambda s: s.episode_id)
        page = [s for s in running if s.episode_id > (after or "")][
            : request.page_size or DEFAULT_PAGE
        ]
        more = page and page[-1].episode_id != running[-1].episode_id
        self._audit_read(
            context,
            caller,
            episode_ids=[s.episode_id for s in page],
            query={"municipality": request.municipality},
        )
        return pb.ListRunningClocksResponse(
            episodes=page, next_page_token=_page_token(page[-1].episode_id) if more else ""
        )

    @audited_rpc
    async def GetMonthlyStatement(
        self, request: pb.GetMonthlyStatementRequest, context: Context
    ) -> pb.MonthlyStatement:
        caller = await self.auth.authenticate(context)
        violations = []
        if bool(request.municipality) == bool(request.her_id):
            violations.append(("municipality", "give either municipality or herId"))
        if request.municipality and not MUNICIPALITY.match(request.municipality):
            violations.append(("municipality", "must be a four-digit kommunenummer"))
        if request.her_id and not HER_ID.match(request.her_id):
            violations.append(("herId", "must be the hospital's HER-id (digits)"))
        if not MONTH.match(request.month):
            violations.append(("month", "must be YYYY-MM"))
        if request.corrections_since and not _is_date(request.corrections_since):
            violations.append(("correctionsSince", "must be YYYY-MM-DD"))
        if violations:
            await abort_invalid(context, violations)
        municipality, her_id = request.municipality or None, request.her_id or None
        if not may_read_statements(caller.role, municipality=municipality, her_id=her_id):
            await self.auth.deny(context, caller, "read that statement")
        entries = sorted(self._served(), key=lambda e: e.episode_id)
        lines = list(monthly_lines(entries, request))
        as_ofs = [e.as_of for e in entries]
        for answer in await self._fan_out(context, "GetMonthlyStatement", request):
            lines.extend(answer.lines)
            if answer.as_of:
                as_ofs.append(dt.date.fromisoformat(answer.as_of))
        if self._routing(context) is not None or self.peers is None:
            # The archive is shared: the worker asked adds it, for episodes no hot table has.
            hot = {line.episode_id for line in lines} | {e.episode_id for e in entries}
            lines.extend(
                line
                for line in monthly_lines(await self._archived(request), request)
                if line.episode_id not in hot
            )
        lines.sort(key=lambda line: line.episode_id)
        if self._routing(context) is not None or self.peers is None:  # the worker asked
            await self._add_shared(lines, request)
        self._audit_read(
            context,
            caller,
            episode_ids=sorted({line.episode_id for line in lines}),
            query={
                "municipality": request.municipality,
                "herId": request.her_id,
                "month": request.month,
            },
        )
        return pb.MonthlyStatement(
            municipality=request.municipality,
            her_id=request.her_id,
            month=request.month,
            lines=lines,
            liable_days=sum(line.liable_days for line in lines),
            pending_days=sum(line.pending_days for line in lines),
            amount_nok=sum(line.amount_nok for line in lines),
            as_of=max(as_ofs).isoformat() if as_ofs else "",
            disputed_open_days=sum(line.disputed_open_days for line in lines),
            disputed_open_nok=sum(line.disputed_open_nok for line in lines),
            disputed_accepted_days=sum(line.disputed_accepted_days for line in lines),
            disputed_accepted_nok=sum(line.disputed_accepted_nok for line in lines),
            corrections_since=request.corrections_since,
            corrections_delta_nok=sum(c.delta_nok for line in lines for c in line.corrections),
        )

    async def _add_shared(
        self, lines: list[pb.MonthlyStatementLine], request: pb.GetMonthlyStatementRequest
    ) -> None:
        """What the shared database adds to the merged lines: corrections, disputes."""
        if self.corrections is not None and request.corrections_since:
            since = dt.date.fromisoformat(request.corrections_since)
            first = dt.date.fromisoformat(f"{request.month}-01")
            last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
            found = await asyncio.to_thread(
                self.corrections.after, since, first, last, request.her_id or None
            )
            add_corrections(lines, found, request)
        if self.disputes is not None:
            ids = [line.episode_id for line in lines]
            add_disputes(lines, await asyncio.to_thread(self.disputes.of_episodes, ids), request)
