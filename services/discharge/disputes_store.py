"""Disputes in the discharge SQL database, shared by every worker (blocking calls: the
gRPC edge runs them in a thread)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from sqlalchemy import Engine, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from discharge.domain.disputes import Dispute, DisputeState, resolve
from discharge.models import DisputeRow
from overgang.sql.engine import aware


def _utc(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC)


def _aware(at: dt.datetime | None) -> dt.datetime | None:
    return aware(at) if at is not None else None


def _dispute(row: DisputeRow) -> Dispute:
    return Dispute(
        dispute_id=row.dispute_id,
        episode_id=row.episode_id,
        municipality=row.municipality,
        days=tuple(dt.date.fromisoformat(d) for d in json.loads(row.days_json)),
        reason=row.reason,
        opened_at=aware(row.opened_at),
        opened_by=row.opened_by,
        state=DisputeState(row.state),
        note=row.note,
        resolved_at=_aware(row.resolved_at),
        resolved_by=row.resolved_by,
    )


def _row(dispute: Dispute) -> DisputeRow:
    return DisputeRow(
        dispute_id=dispute.dispute_id,
        episode_id=dispute.episode_id,
        her_id=dispute.episode_id.partition(":")[0],
        municipality=dispute.municipality,
        days_json=json.dumps([d.isoformat() for d in dispute.days]),
        first_day=min(dispute.days),
        last_day=max(dispute.days),
        reason=dispute.reason,
        state=dispute.state.value,
        note=dispute.note,
        opened_at=_utc(dispute.opened_at),
        opened_by=dispute.opened_by,
        resolved_at=_utc(dispute.resolved_at) if dispute.resolved_at else None,
        resolved_by=dispute.resolved_by,
    )


class DisputeStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, dispute_id: str) -> Dispute | None:
        with Session(self.engine) as session:
            row = session.get(DisputeRow, dispute_id)
            return _dispute(row) if row else None

    def of_episodes(self, episode_ids: Iterable[str]) -> dict[str, list[Dispute]]:
        """Each episode's disputes, oldest first."""
        ids = sorted(set(episode_ids))
        found: dict[str, list[Dispute]] = {}
        if not ids:
            return found
        query = (
            select(DisputeRow)
            .where(col(DisputeRow.episode_id).in_(ids))
            .order_by(col(DisputeRow.opened_at), col(DisputeRow.dispute_id))
        )
        with Session(self.engine) as session:
            for row in session.exec(query):
                found.setdefault(row.episode_id, []).append(_dispute(row))
        return found

    def add(self, dispute: Dispute) -> Dispute:
        """Records a new dispute; if another worker recorded one with this id first, that
        one (the caller compares the content)."""
        try:
            with Session(self.engine) as session:
                session.add(_row(dispute))
                session.commit()
            return dispute
        except IntegrityError:
            existing = self.get(dispute.dispute_id)
            if existing is None:
                raise
            return existing

    def resolve(
        self, dispute_id: str, state: DisputeState, note: str, by: str, at: dt.datetime
    ) -> Dispute | None:
        """The dispute resolved (None: unknown). A conditional update, so two workers
        resolving at once cannot both win: the loser sees the winner's resolution."""
        for _ in range(2):
            current = self.get(dispute_id)
            if current is None:
                return None
            resolved, changed = resolve(current, state, note, by, at)  # may raise
            if not changed:
                return resolved
            statement = (
                update(DisputeRow)
                .where(
                    col(DisputeRow.dispute_id) == dispute_id,
                    col(DisputeRow.state) == DisputeState.OPEN.value,
                )
                .values(state=state.value, note=note, resolved_at=_utc(at), resolved_by=by)
            )
            with Session(self.engine) as session:
                done = session.execute(statement).rowcount  # type: ignore[attr-defined]
                session.commit()
            if done:
                return resolved
        raise AssertionError("a resolved dispute cannot become open again")

    def counts(self) -> dict[tuple[str, str], int]:
        """{(municipality, state): disputes}, for the metrics."""
        query = select(DisputeRow.municipality, DisputeRow.state, func.count()).group_by(
            col(DisputeRow.municipality), col(DisputeRow.state)
        )
        with Session(self.engine) as session:
            return {(m, s): int(n) for m, s, n in session.exec(query)}
