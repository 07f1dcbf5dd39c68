"""Queries of the pathway projection for lists: the filters of ListPathways (narrowed to
the caller's scope by the gRPC API) and the open units of each listed episode."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from overgang.vocabulary import Stage
from pathway.domain.tasks import OPEN_STATUSES
from pathway.models import PathwayRow, TaskRow


@dataclass(frozen=True)
class ListFilter:
    stage: Stage | None = None
    municipality: str = ""
    unit: str = ""
    division: str = ""
    her_id: str = ""


def list_query(filters: ListFilter, after: str = "") -> Any:
    """Pathways matching `filters` after episode id `after`, in episode id order."""
    query = select(PathwayRow).order_by(col(PathwayRow.episode_id))
    if after:
        query = query.where(col(PathwayRow.episode_id) > after)
    for column, wanted in (
        (PathwayRow.stage, filters.stage.value if filters.stage is not None else ""),
        (PathwayRow.municipality, filters.municipality),
        (PathwayRow.division, filters.division),
        (PathwayRow.her_id, filters.her_id),
    ):
        if wanted:
            query = query.where(col(column) == wanted)
    if filters.unit:
        with_unit = select(TaskRow.episode_id).where(
            col(TaskRow.status).in_(OPEN_STATUSES),
            or_(
                col(TaskRow.unit) == filters.unit,
                col(TaskRow.unit).startswith(filters.unit + "/"),
            ),
        )
        query = query.where(col(PathwayRow.episode_id).in_(with_unit))
    return query


def open_units(session: Session, episode_ids: Sequence[str]) -> dict[str, list[str]]:
    """The units with an open task, by episode."""
    if not episode_ids:
        return {}
    found: dict[str, set[str]] = {}
    query = select(TaskRow.episode_id, TaskRow.unit).where(
        col(TaskRow.episode_id).in_(episode_ids),
        col(TaskRow.status).in_(OPEN_STATUSES),
    )
    for episode_id, unit in session.exec(query):
        found.setdefault(episode_id, set()).add(unit)
    return {k: sorted(v) for k, v in found.items()}
