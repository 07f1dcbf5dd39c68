"""`overgang sla`: the pathway SLAs of a month as figures, per municipality and division.

Per episode with a discharge-ready notice in the month (its last notice counts):
* to the municipality's answer: notice -> the first answer to it (the first of the
  answers the liability period of that notice names as evidence, with their event
  times; an answer before the notice answers no notice of the period), days with
  decimals, in event time; an episode without an answer yet is left out, not 0;
* to service ready: notice day -> the day the municipality reported its service ready
  (the liability period's end when it ended by SERVICE_READY), whole Oslo days;
* to discharge: notice -> discharge (the stage history's move out of DISCHARGE_READY
  to RECEIVED or CLOSED by a discharge), days with decimals;
* liable days: the episode's liability statement (every period);
* received on the day they were ready: discharged to municipal care (RECEIVED) on the
  period's first day (the later of the ready day and the notice day).
Statement figures are as of the statements' date: an answer of today counts tomorrow.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from overgang.events import oslo_day
from overgang.v1 import events_pb2, pathway_pb2
from tooling.month import MonthData, at, notices

_LEFT = (pathway_pb2.STAGE_RECEIVED, pathway_pb2.STAGE_CLOSED)


def days_between(start: dt.datetime, end: dt.datetime) -> float:
    """Elapsed days, with decimals. In UTC: Python subtracts two datetimes of one time zone
    as wall-clock times, which would make the night to summer time 24 hours long."""
    return (end.astimezone(dt.UTC) - start.astimezone(dt.UTC)).total_seconds() / 86_400


@dataclass(frozen=True)
class EpisodeSla:
    episode_id: str
    municipality: str
    division: str
    notice_at: dt.datetime
    ready_day: dt.date
    answered_at: dt.datetime | None  # the first answer to the notice
    service_ready_day: dt.date | None
    discharged_at: dt.datetime | None
    received: bool
    liable_days: int | None  # None: no statement
    amount_nok: int

    @property
    def to_answer(self) -> float | None:
        if self.answered_at is None:
            return None
        return days_between(self.notice_at, self.answered_at)

    @property
    def to_service_ready(self) -> float | None:
        if self.service_ready_day is None:
            return None
        return float((self.service_ready_day - oslo_day(self.notice_at)).days)

    @property
    def to_discharge(self) -> float | None:
        if self.discharged_at is None:
            return None
        return days_between(self.notice_at, self.discharged_at)

    @property
    def received_same_day(self) -> bool:
        return (
            self.received
            and self.discharged_at is not None
            and oslo_day(self.discharged_at) == self.ready_day
        )


def episode_sla(pathway: Any, statement: Any | None) -> EpisodeSla:
    notice = notices(pathway)[-1]
    notice_at = at(notice.at)
    period = None
    if statement is not None:
        matching = [p for p in statement.periods if p.notice_event_id == notice.cause_event_id]
        period = matching[-1] if matching else None
    leaving = [
        h
        for h in pathway.history
        if h.from_stage == pathway_pb2.STAGE_DISCHARGE_READY
        and h.to_stage in _LEFT
        and h.reason.startswith("discharged")
        and at(h.at) >= notice_at
    ]
    left = leaving[0] if leaving else None
    service_ready = ""
    if period is not None and period.end_cause == "SERVICE_READY":
        service_ready = period.end
    return EpisodeSla(
        episode_id=pathway.episode_id,
        municipality=pathway.municipality,
        division=events_pb2.Division.Name(pathway.division),
        notice_at=notice_at,
        ready_day=dt.date.fromisoformat(period.start)
        if period and period.start
        else oslo_day(notice_at),
        answered_at=first_answer(period, notice_at),
        service_ready_day=dt.date.fromisoformat(service_ready) if service_ready else None,
        discharged_at=at(left.at) if left is not None else None,
        received=left is not None and left.to_stage == pathway_pb2.STAGE_RECEIVED,
        liable_days=statement.liable_days if statement is not None else None,
        amount_nok=statement.amount_nok if statement is not None else 0,
    )


def first_answer(period: Any | None, notice_at: dt.datetime) -> dt.datetime | None:
    """The first answer of the notice's period at or after the notice (the clock names no
    earlier one; checked here too, since the figure must never count one)."""
    if period is None:
        return None
    times = [at(a.occurred_at) for a in period.evidence.answer_times]
    return min((t for t in times if t >= notice_at), default=None)


def episodes(data: MonthData) -> list[EpisodeSla]:
    return [episode_sla(p, data.statements.get(p.episode_id)) for p in data.pathways]


def p90(values: list[float]) -> float:
    """Nearest rank: 90 % of the values are at most this."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def spread(values: Iterable[float | int | None]) -> dict[str, Any]:
    found = [float(v) for v in values if v is not None]
    if not found:
        return {"n": 0, "median": None, "p90": None}
    return {
        "n": len(found),
        "median": round(statistics.median(found), 1),
        "p90": round(p90(found), 1),
    }


def figures(name: str, group: list[EpisodeSla]) -> dict[str, Any]:
    liable = [e.liable_days for e in group if e.liable_days is not None]
    received = [e for e in group if e.received]
    same_day = sum(e.received_same_day for e in received)
    return {
        "group": name,
        "patients": len(group),
        "toAnswerDays": spread(e.to_answer for e in group),
        "toServiceReadyDays": spread(e.to_service_ready for e in group),
        "toDischargeDays": spread(e.to_discharge for e in group),
        "liableDaysPerEpisode": {
            **spread(liable),
            "mean": round(statistics.fmean(liable), 2) if liable else None,
            "max": max(liable, default=None),
            "total": sum(liable),
        },
        "amountNok": sum(e.amount_nok for e in group),
        "receivedSameDay": {
            "received": len(received),
            "sameDay": same_day,
            "share": round(same_day / len(received), 3) if received else None,
        },
    }


def groups(items: list[EpisodeSla]) -> list[dict[str, Any]]:
    """All, then per municipality, per division, per municipality and division."""
    keyed: list[tuple[str, list[EpisodeSla]]] = [("all", items)]
    for key in (
        lambda e: e.municipality,
        lambda e: e.division,
        lambda e: f"{e.municipality} {e.division}",
    ):
        names = sorted({key(e) for e in items})
        keyed += [(n, [e for e in items if key(e) == n]) for n in names]
    return [figures(name, group) for name, group in keyed]


def sla_json(data: MonthData) -> dict[str, Any]:
    items = episodes(data)
    return {
        "month": data.scope.month,
        "municipality": data.scope.municipality,
        "herId": data.scope.her_id,
        "asOf": data.as_of,
        "episodes": len(items),
        "withoutStatement": data.missing,
        "groups": groups(items),
    }


def _pair(s: dict[str, Any]) -> str:
    if not s["n"]:
        return "-"
    return f"{s['median']:g} / {s['p90']:g}"


def write_sla(report: dict[str, Any], out: TextIO) -> None:
    where = report["municipality"] or "every municipality"
    if report["herId"]:
        where += f", hospital {report['herId']}"
    out.write(
        f"SLA {report['month']}, {where}: {report['episodes']} episodes with a discharge-ready "
        f"notice in the month (statements as of {report['asOf'] or '-'})\n"
    )
    out.write("days: median / p90; liable days per episode: mean, median / p90, max\n")
    header = ("group", "patients", "to answer", "to service ready", "to discharge")
    out.write(f"{header[0]:<24}{header[1]:>9}{header[2]:>12}{header[3]:>18}{header[4]:>15}")
    out.write(f"{'liable days':>22}{'same day':>16}\n")
    for g in report["groups"]:
        liable = g["liableDaysPerEpisode"]
        days = f"{liable['mean'] or 0:g}, {_pair(liable)}, {liable['max'] or 0}"
        same = g["receivedSameDay"]
        share = f"{same['sameDay']}/{same['received']}"
        if same["share"] is not None:
            share += f" {100 * same['share']:.0f}%"
        out.write(
            f"{g['group']:<24}{g['patients']:>9}{_pair(g['toAnswerDays']):>12}"
            f"{_pair(g['toServiceReadyDays']):>18}"
            f"{_pair(g['toDischargeDays']):>15}{days:>22}{share:>16}\n"
        )
    for episode_id, reason in sorted(report["withoutStatement"].items()):
        out.write(f"no statement for {episode_id}: {reason}\n")


def write_sla_json(report: dict[str, Any], out: TextIO) -> None:
    json.dump(report, out, indent=2, ensure_ascii=False)
    out.write("\n")
