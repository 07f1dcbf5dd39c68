"""Domain results as overgang.v1 liability messages."""

from __future__ import annotations

import datetime as dt

from discharge.domain.disputes import Dispute, DisputeState
from discharge.domain.liability_diff import ChangeKind, LiabilityChange
from discharge.domain.statement import (
    Conflict,
    Evidence,
    LiableDay,
    Period,
    PeriodStatus,
    Statement,
)
from overgang.v1 import liability_pb2 as pb

_STATUS = {
    PeriodStatus.RUNNING: pb.RUNNING,
    PeriodStatus.ENDED: pb.ENDED,
    PeriodStatus.VOID: pb.VOID,
    PeriodStatus.NOT_STARTED: pb.NOT_STARTED,
}


DISPUTE_STATES = {
    DisputeState.OPEN: pb.DISPUTE_OPEN,
    DisputeState.ACCEPTED: pb.DISPUTE_ACCEPTED,
    DisputeState.REJECTED: pb.DISPUTE_REJECTED,
}


def _day(value: dt.date | None) -> str:
    return value.isoformat() if value else ""


def liable_day(day: LiableDay) -> pb.LiableDay:
    return pb.LiableDay(
        date=day.date.isoformat(), amount_nok=day.amount_nok or 0, rate_pending=day.pending
    )


def evidence(e: Evidence) -> pb.Evidence:
    msg = pb.Evidence(
        started_by=e.started_by,
        ended_by=e.ended_by or "",
        voided_by=e.voided_by or "",
        answers=list(e.answers),
        admission_notice=e.admission_notice or "",
        cooperation_meeting=e.cooperation_meeting or "",
        updates=list(e.updates),
    )
    for event_id, occurred_at in zip(e.answers, e.answered_at, strict=False):
        msg.answer_times.add(event_id=event_id).occurred_at.FromDatetime(
            occurred_at.astimezone(dt.UTC)
        )
    return msg


def conflict(c: Conflict) -> pb.Conflict:
    return pb.Conflict(
        event_id=c.event_id, reason=c.reason, kind=c.kind.value, related_event_id=c.related_event_id
    )


def period(p: Period) -> pb.Period:
    return pb.Period(
        notice_event_id=p.notice_event_id,
        status=_STATUS[p.status],
        void_reason=pb.VoidReason.Value(p.void_reason.value)
        if p.void_reason
        else pb.VOID_REASON_UNSPECIFIED,
        start=_day(p.start),
        end=_day(p.end),
        municipality=p.municipality,
        days=p.liable_days,
        amount_nok=p.amount_nok,
        end_cause=p.end_cause.value if p.end_cause else "",
        pending_days=p.pending_days,
        evidence=evidence(p.evidence),
        not_liable_reason=p.not_liable_reason or "",
    )


def episode_statement(statement: Statement, error: str | None = None) -> pb.EpisodeStatement:
    return pb.EpisodeStatement(
        episode_id=statement.episode_id,
        status=_STATUS[statement.status],
        start=_day(statement.start),
        end=_day(statement.end),
        liable_days=statement.liable_days,
        amount_nok=statement.amount_nok,
        void_reason=pb.VoidReason.Value(statement.void_reason.value)
        if statement.void_reason
        else pb.VOID_REASON_UNSPECIFIED,
        municipality=statement.municipality,
        periods=[period(p) for p in statement.periods],
        days=[liable_day(d) for d in statement.days],
        as_of=statement.as_of.isoformat(),
        error=error or "",
        pending_days=statement.pending_days,
        rate_pending=statement.rate_pending,
        conflicts=[conflict(c) for c in statement.conflicts],
    )


def liability_event(change: LiabilityChange, as_of: dt.date, now: dt.datetime) -> pb.LiabilityEvent:
    msg = pb.LiabilityEvent(
        event_id=change.event_id,
        episode_id=change.episode_id,
        municipality=change.municipality,
        as_of=as_of.isoformat(),
    )
    msg.emitted_at.FromDatetime(now.astimezone(dt.UTC))
    if change.kind is ChangeKind.PERIOD_STARTED:
        assert change.period is not None
        msg.period_started.period.CopyFrom(period(change.period))
    elif change.kind is ChangeKind.PERIOD_VOIDED:
        assert change.period is not None
        msg.period_voided.period.CopyFrom(period(change.period))
        if change.period.void_reason:
            msg.period_voided.reason = pb.VoidReason.Value(change.period.void_reason.value)
    elif change.kind is ChangeKind.DAY_ACCRUED:
        assert change.day is not None
        msg.day_accrued.day.CopyFrom(liable_day(change.day))
    elif change.kind is ChangeKind.CORRECTED:
        msg.corrected.reversed.extend(liable_day(d) for d in change.reversed)
        msg.corrected.added.extend(liable_day(d) for d in change.added)
        msg.corrected.delta_nok = change.delta_nok
        msg.corrected.cause_event_id = change.cause_event_id
        msg.corrected.delta_pending_days = change.delta_pending_days
    elif change.kind is ChangeKind.PERIOD_ENDED:
        assert change.period is not None
        msg.period_ended.period.CopyFrom(period(change.period))
    return msg


def dispute(d: Dispute) -> pb.Dispute:
    msg = pb.Dispute(
        dispute_id=d.dispute_id,
        episode_id=d.episode_id,
        municipality=d.municipality,
        days=[day.isoformat() for day in d.days],
        reason=d.reason,
        state=DISPUTE_STATES[d.state],
        resolution_note=d.note,
        opened_by=d.opened_by,
        resolved_by=d.resolved_by,
    )
    msg.opened_at.FromDatetime(d.opened_at.astimezone(dt.UTC))
    if d.resolved_at is not None:
        msg.resolved_at.FromDatetime(d.resolved_at.astimezone(dt.UTC))
    return msg
