"""One month's data for the ops and finance views, read from the services over gRPC:
the pathways with a discharge-ready notice in the month (ListPathways, with their stage
histories), each one's liability statement (GetEpisode), the monthly statements
(GetMonthlyStatement) and the coordination tasks (StreamTasks)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import grpc

from overgang.events import OSLO, oslo_day
from overgang.v1 import liability_pb2, pathway_pb2
from tooling.clients import RPC_TIMEOUT, Clients, describe_error
from tooling.tasks import all_tasks

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(text: str) -> tuple[dt.date, dt.date]:
    """ "2024-03" -> (first day, first day of the next month)."""
    match = MONTH.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a month YYYY-MM")
    first = dt.date(int(match[1]), int(match[2]), 1)
    return first, (first + dt.timedelta(days=32)).replace(day=1)


def at(timestamp: Any) -> dt.datetime:
    """A google.protobuf.Timestamp as an aware datetime in Oslo."""
    return timestamp.ToDatetime(tzinfo=dt.UTC).astimezone(OSLO)  # type: ignore[no-any-return]


def notices(pathway: Any) -> list[Any]:
    """The pathway's discharge-ready notices (history entries into DISCHARGE_READY)."""
    return [h for h in pathway.history if h.to_stage == pathway_pb2.STAGE_DISCHARGE_READY]


@dataclass(frozen=True)
class Scope:
    month: str
    municipality: str = ""  # payer kommunenummer, or every one
    her_id: str = ""  # the hospital, or every one

    @property
    def days(self) -> tuple[dt.date, dt.date]:
        return parse_month(self.month)

    def in_month(self, day: dt.date) -> bool:
        first, end = self.days
        return first <= day < end

    def covers_episode(self, episode_id: str) -> bool:
        return not self.her_id or episode_id.partition(":")[0] == self.her_id


@dataclass
class MonthData:
    scope: Scope
    now: dt.datetime  # the services' "today" (OVERGANG_CLOCK_DATE fixes it)
    pathways: list[Any] = field(default_factory=list)  # notice in the month
    statements: dict[str, Any] = field(default_factory=dict)  # episode id -> statement
    missing: dict[str, str] = field(default_factory=dict)  # episode id -> why no statement
    monthly: list[Any] = field(default_factory=list)  # MonthlyStatement per payer or hospital
    tasks: list[Any] = field(default_factory=list)

    @property
    def as_of(self) -> str:
        return max((m.as_of for m in self.monthly if m.as_of), default="")

    def lines(self) -> list[Any]:
        """Every monthly statement line in scope, in episode order."""
        found = [
            line
            for statement in self.monthly
            for line in statement.lines
            if self.scope.covers_episode(line.episode_id)
        ]
        return sorted(found, key=lambda line: (line.episode_id, line.municipality))


def monthly_statements(
    clients: Clients, scope: Scope, payers: list[str], since: str = ""
) -> list[Any]:
    """GetMonthlyStatement for the payer, else the hospital, else each of `payers`;
    with the corrections made after `since` (YYYY-MM-DD), if given."""
    if scope.municipality or not scope.her_id:
        requests = [
            liability_pb2.GetMonthlyStatementRequest(
                municipality=m, month=scope.month, corrections_since=since
            )
            for m in ([scope.municipality] if scope.municipality else payers)
        ]
    else:
        requests = [
            liability_pb2.GetMonthlyStatementRequest(
                her_id=scope.her_id, month=scope.month, corrections_since=since
            )
        ]
    return [
        clients.liability.GetMonthlyStatement(r, timeout=RPC_TIMEOUT, metadata=clients.md)
        for r in requests
    ]


def gather(clients: Clients, scope: Scope, now: dt.datetime, with_tasks: bool = True) -> MonthData:
    data = MonthData(scope, now)
    payers: set[str] = set()
    for pathway in clients.pathways(municipality=scope.municipality):
        if not scope.covers_episode(pathway.episode_id):
            continue
        payers.add(pathway.municipality)
        if any(scope.in_month(oslo_day(at(n.at))) for n in notices(pathway)):
            data.pathways.append(pathway)
    for pathway in data.pathways:
        try:
            data.statements[pathway.episode_id] = clients.liability.GetEpisode(
                liability_pb2.GetEpisodeRequest(episode_id=pathway.episode_id),
                timeout=RPC_TIMEOUT,
                metadata=clients.md,
            )
        except grpc.RpcError as error:
            data.missing[pathway.episode_id] = describe_error(error)
    data.monthly = monthly_statements(clients, scope, sorted(payers))
    if with_tasks:
        data.tasks = [
            t
            for t in all_tasks(clients)
            if scope.covers_episode(t.episode_id)
            and scope.municipality in ("", t.municipality)
            and scope.in_month(oslo_day(at(t.due_at)))
        ]
    return data
