"""`overgang statement`: a month's liability statement that finance can reconcile, from
LiabilityService.GetMonthlyStatement. One row per episode and liability period with days
in the month: the liable days with their dates, the rate, rate-pending days, the amount,
and the evidence (the notice that opened the period, the answers that applied, the event
that ended it); beside them the municipality's disputes of those days (open, accepted,
rejected), which never change the liable days. As a table, CSV (one header, no totals
row: totals go to stderr) or JSON.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from overgang.v1 import liability_pb2
from tooling.month import MonthData

CSV_COLUMNS = (
    "month",
    "payer_municipality",
    "hospital_her_id",
    "episode_id",
    "period_start",
    "period_end",
    "period_status",
    "end_cause",
    "liable_days",
    "dates",
    "rate_nok_per_day",
    "rate_pending_days",
    "amount_nok",
    "notice_event_id",
    "answer_event_ids",
    "end_event_id",
    "admission_notice_event_id",
    "voided_by_event_id",
    "disputed_open_days",
    "disputed_open_nok",
    "disputed_accepted_days",
    "disputed_accepted_nok",
    "dispute_ids",
)
OPEN, ACCEPTED = liability_pb2.DISPUTE_OPEN, liability_pb2.DISPUTE_ACCEPTED


@dataclass(frozen=True)
class Row:
    """One episode's days of one period in the month."""

    line: Any  # MonthlyStatementLine
    period: Any  # Period
    days: list[Any]  # LiableDay, in the month and the period

    @property
    def rate(self) -> str:
        rates = sorted({d.amount_nok for d in self.days if not d.rate_pending})
        return "/".join(str(r) for r in rates) or "pending"

    @property
    def pending(self) -> int:
        return sum(1 for d in self.days if d.rate_pending)

    @property
    def amount(self) -> int:
        return sum(d.amount_nok for d in self.days)

    @property
    def disputes(self) -> list[Any]:
        """The line's disputes of days of this row."""
        dates = {d.date for d in self.days}
        return [x for x in self.line.disputes if dates & set(x.days)]

    def disputed(self, state: int) -> tuple[int, int]:
        """(days, NOK) of this row disputed in open / accepted disputes."""
        held = {day for x in self.line.disputes if x.state == state for day in x.days}
        days = [d for d in self.days if d.date in held]
        return len(days), sum(d.amount_nok for d in days)


def dispute_state(dispute: Any) -> str:
    return liability_pb2.DisputeState.Name(dispute.state).removeprefix("DISPUTE_")


def _in_period(day: Any, period: Any) -> bool:
    return bool(period.start <= day.date and (not period.end or day.date < period.end))


def rows(data: MonthData) -> Iterator[Row]:
    for line in data.lines():
        periods = list(line.periods)
        for period in periods:
            days = [d for d in line.days if _in_period(d, period)]
            if days:
                yield Row(line, period, days)


def date_ranges(days: list[Any]) -> str:
    """ "2024-03-04/2024-03-06;2024-03-09": runs of consecutive dates (ISO 8601 intervals)."""
    dates = sorted(dt.date.fromisoformat(d.date) for d in days)
    runs: list[list[dt.date]] = []
    for date in dates:
        if runs and (date - runs[-1][-1]).days == 1:
            runs[-1].append(date)
        else:
            runs.append([date])
    return ";".join(
        r[0].isoformat() if len(r) == 1 else f"{r[0].isoformat()}/{r[-1].isoformat()}" for r in runs
    )


def _status(period: Any) -> str:
    return liability_pb2.PeriodStatus.Name(period.status)


def totals(data: MonthData) -> dict[str, int]:
    lines = data.lines()
    return {
        "episodes": len({line.episode_id for line in lines}),
        "liableDays": sum(line.liable_days for line in lines),
        "pendingDays": sum(line.pending_days for line in lines),
        "amountNok": sum(line.amount_nok for line in lines),
        "disputedOpenDays": sum(line.disputed_open_days for line in lines),
        "disputedOpenNok": sum(line.disputed_open_nok for line in lines),
        "disputedAcceptedDays": sum(line.disputed_accepted_days for line in lines),
        "disputedAcceptedNok": sum(line.disputed_accepted_nok for line in lines),
    }


def nok(amount: int) -> str:
    return f"{amount:,}".replace(",", " ")


def _title(data: MonthData) -> str:
    scope = data.scope
    who = f"municipality {scope.municipality}" if scope.municipality else "every municipality"
    if scope.her_id:
        who += f", hospital {scope.her_id}"
    return f"statement {scope.month}, {who} (as of {data.as_of or '-'})"


def write_table(data: MonthData, out: TextIO) -> None:
    out.write(_title(data) + "\n")
    out.write(
        f"{'episode':<24}{'payer':<7}{'days':>5}  {'dates':<24}{'rate':>7}{'pending':>9}"
        f"{'NOK':>11}\n"
    )
    for row in rows(data):
        out.write(
            f"{row.line.episode_id:<24}{row.line.municipality:<7}{len(row.days):>5}  "
            f"{date_ranges(row.days):<24}{row.rate:>7}{row.pending:>9}{nok(row.amount):>11}\n"
        )
        e = row.period.evidence
        ended = f"{row.period.end_cause} {e.ended_by}" if e.ended_by else "running"
        out.write(
            f"    notice {e.started_by}; answers {', '.join(e.answers) or '-'}; end {ended}\n"
        )
        for x in row.disputes:
            dates = date_ranges([d for d in row.days if d.date in set(x.days)])
            note = f" ({x.resolution_note})" if x.resolution_note else ""
            out.write(f"    dispute {x.dispute_id} {dispute_state(x)} {dates}: {x.reason}{note}\n")
    write_corrections(data, out)
    t = totals(data)
    out.write(
        f"total: {t['episodes']} episodes, {t['liableDays']} liable days "
        f"({t['pendingDays']} rate-pending), NOK {nok(t['amountNok'])}\n"
    )
    if t["disputedOpenDays"] or t["disputedAcceptedDays"]:
        out.write(
            f"disputed: open {t['disputedOpenDays']} days NOK {nok(t['disputedOpenNok'])}, "
            f"accepted {t['disputedAcceptedDays']} days NOK {nok(t['disputedAcceptedNok'])} "
            "(in the liable days above, not deducted)\n"
        )


def write_csv(data: MonthData, out: TextIO, err: TextIO, delimiter: str = ",") -> None:
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows(data):
        p, e = row.period, row.period.evidence
        writer.writerow(
            (
                data.scope.month,
                row.line.municipality,
                row.line.episode_id.partition(":")[0],
                row.line.episode_id,
                p.start,
                p.end,
                _status(p),
                p.end_cause,
                len(row.days),
                date_ranges(row.days),
                "" if row.rate == "pending" else row.rate,
                row.pending,
                row.amount,
                e.started_by,
                " ".join(e.answers),
                e.ended_by,
                e.admission_notice,
                e.voided_by,
                *row.disputed(OPEN),
                *row.disputed(ACCEPTED),
                " ".join(f"{x.dispute_id}:{dispute_state(x)}" for x in row.disputes),
            )
        )
    t = totals(data)
    err.write(
        f"# {_title(data)}: {t['episodes']} episodes, {t['liableDays']} liable days "
        f"({t['pendingDays']} rate-pending), NOK {t['amountNok']}; disputed open "
        f"{t['disputedOpenDays']} days NOK {t['disputedOpenNok']}, accepted "
        f"{t['disputedAcceptedDays']} days NOK {t['disputedAcceptedNok']}\n"
    )


def corrections(data: MonthData) -> list[dict[str, Any]]:
    """The corrections the statements list (asked for with --since), per episode."""
    return [
        {
            "episodeId": line.episode_id,
            "eventId": c.event_id,
            "cause": c.cause_event_id,
            "asOf": c.as_of,
            "reversed": [d.date for d in c.reversed],
            "added": [d.date for d in c.added],
            "deltaNok": c.delta_nok,
            "deltaPendingDays": c.delta_pending_days,
        }
        for line in data.lines()
        for c in line.corrections
    ]


def write_corrections(data: MonthData, out: TextIO) -> None:
    since = next((m.corrections_since for m in data.monthly if m.corrections_since), "")
    if not since:
        return
    found = corrections(data)
    out.write(f"corrections since {since}: {len(found)}\n")
    for c in found:
        out.write(
            f"    {c['episodeId']} as of {c['asOf']} cause {c['cause'] or '-'}: "
            f"-{len(c['reversed'])} +{len(c['added'])} days, NOK {c['deltaNok']:+}\n"
        )


def dispute_json(x: Any) -> dict[str, Any]:
    return {
        "disputeId": x.dispute_id,
        "municipality": x.municipality,
        "days": list(x.days),
        "reason": x.reason,
        "state": dispute_state(x),
        "note": x.resolution_note,
    }


def statement_json(data: MonthData) -> dict[str, Any]:
    episodes: dict[str, dict[str, Any]] = {}
    for row in rows(data):
        line, p, e = row.line, row.period, row.period.evidence
        episode = episodes.setdefault(
            line.episode_id,
            {
                "episodeId": line.episode_id,
                "municipality": line.municipality,
                "herId": line.episode_id.partition(":")[0],
                "liableDays": line.liable_days,
                "pendingDays": line.pending_days,
                "amountNok": line.amount_nok,
                "disputedOpenDays": line.disputed_open_days,
                "disputedOpenNok": line.disputed_open_nok,
                "disputedAcceptedDays": line.disputed_accepted_days,
                "disputedAcceptedNok": line.disputed_accepted_nok,
                "disputes": [dispute_json(x) for x in line.disputes],
                "periods": [],
            },
        )
        episode["periods"].append(
            {
                "start": p.start,
                "end": p.end,
                "status": _status(p),
                "endCause": p.end_cause,
                "liableDays": len(row.days),
                "pendingDays": row.pending,
                "amountNok": row.amount,
                "rateNok": None if row.rate == "pending" else row.rate,
                "days": [
                    {"date": d.date, "amountNok": d.amount_nok, "ratePending": d.rate_pending}
                    for d in row.days
                ],
                "evidence": {
                    "notice": e.started_by,
                    "answers": list(e.answers),
                    "end": e.ended_by,
                    "admissionNotice": e.admission_notice,
                    "voidedBy": e.voided_by,
                    "cooperationMeeting": e.cooperation_meeting,
                    "updates": list(e.updates),
                },
            }
        )
    scope = data.scope
    return {
        "month": scope.month,
        "municipality": scope.municipality,
        "herId": scope.her_id,
        "asOf": data.as_of,
        **totals(data),
        "lines": list(episodes.values()),
        "corrections": corrections(data),
    }


def write_json(data: MonthData, out: TextIO) -> None:
    json.dump(statement_json(data), out, indent=2, ensure_ascii=False)
    out.write("\n")
