"""Wire forms <-> domain: the pathway projection as `overgang.v1.Pathway`, the
PathwayEvent announced per accepted input, stage and division enums, page tokens, and
coordination task updates as the pathway tracks them."""

from __future__ import annotations

import base64
import datetime as dt

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from overgang.codec import CONTENT_TYPE_JSON, EPISODE_ID
from overgang.national_ids import contains_national_id
from overgang.v1 import coordination_pb2, events_pb2, pathway_pb2
from overgang.vocabulary import Stage
from pathway.domain.state_machine import Step
from pathway.domain.tasks import TaskReport
from pathway.models import PathwayRow, aware, history_of, needs_of

PATHWAY_EVENT_CONTENT_TYPE = b"application/x-protobuf; messageType=overgang.v1.PathwayEvent"


class InvalidTask(ValueError):
    """A coordination task update the pathway cannot track; the message names the field."""


def pathway_event_id(cause_id: str) -> str:
    return f"{cause_id}:pathway"


# ------------------------------------------------------------------------- enums
def stage_proto(stage: Stage | None) -> pathway_pb2.Stage.ValueType:
    if stage is None:
        return pathway_pb2.STAGE_UNSPECIFIED
    return pathway_pb2.Stage.Value(f"STAGE_{stage.value}")


def stage_of(value: pathway_pb2.Stage.ValueType) -> Stage | None:
    """None for STAGE_UNSPECIFIED; ValueError for a number this version does not know."""
    if value == pathway_pb2.STAGE_UNSPECIFIED:
        return None
    return Stage(pathway_pb2.Stage.Name(value).removeprefix("STAGE_"))


def division_proto(name: str) -> events_pb2.Division.ValueType:
    return events_pb2.Division.Value(name) if name else events_pb2.DIVISION_UNSPECIFIED


def division_name(value: events_pb2.Division.ValueType) -> str:
    """ "" for DIVISION_UNSPECIFIED, else the enum name as stored (e.g. SOMATIC)."""
    return events_pb2.Division.Name(value) if value != events_pb2.DIVISION_UNSPECIFIED else ""


# -------------------------------------------------------------------- projection
def to_proto(row: PathwayRow, units: list[str]) -> pathway_pb2.Pathway:
    msg = pathway_pb2.Pathway(
        episode_id=row.episode_id,
        stage=stage_proto(Stage(row.stage)),
        municipality=row.municipality,
        division=division_proto(row.division),
        patient_pseudonym=row.patient_pseudonym,
        needs=[events_pb2.Need.Value(n.value) for n in needs_of(row)],
        units=sorted(units),
        her_id=row.her_id,
    )
    msg.updated_at.FromDatetime(aware(row.updated_at).astimezone(dt.UTC))
    for entry in history_of(row):
        change = msg.history.add(
            from_stage=stage_proto(entry.from_stage),
            to_stage=stage_proto(entry.to_stage),
            cause_event_id=entry.cause_id,
            reason=entry.reason,
        )
        change.at.FromDatetime(entry.at.astimezone(dt.UTC))
    return msg


def pathway_event(
    step: Step, pathway: pathway_pb2.Pathway, cause: bytes | None
) -> pathway_pb2.PathwayEvent:
    """The announcement of one accepted input. `cause` is the stored `overgang.v1.Event`
    of a hospital or municipal event; a task completion has none (`cause` stays unset)."""
    message = pathway_pb2.PathwayEvent(
        event_id=pathway_event_id(step.item.event_id),
        episode_id=step.item.episode_id,
        from_stage=stage_proto(step.from_stage),
        to_stage=stage_proto(step.to_stage),
        pathway=pathway,
    )
    if cause is not None:
        message.cause.CopyFrom(events_pb2.Event.FromString(cause))
    return message


# ------------------------------------------------------------------- page tokens
def encode_page_token(episode_id: str) -> str:
    return base64.urlsafe_b64encode(episode_id.encode()).decode()


def decode_page_token(token: str) -> str:
    """Raises ValueError on a token this service did not issue."""
    try:
        episode_id = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        episode_id = ""
    if not EPISODE_ID.match(episode_id) or encode_page_token(episode_id) != token:
        raise ValueError("is not a page token from a previous response")
    return episode_id


# ------------------------------------------------------------------ task updates
def decode_task_update(
    value: bytes | None, content_type: bytes | None, now: dt.datetime
) -> TaskReport:
    """A record of overgang.coordination-tasks.v1 (protobuf, or JSON by content type)."""
    update = coordination_pb2.TaskUpdate()
    try:
        if content_type is not None and content_type.startswith(CONTENT_TYPE_JSON):
            json_format.Parse((value or b"").decode("utf-8"), update)
        else:
            update.ParseFromString(value or b"")
    except (DecodeError, json_format.ParseError, UnicodeDecodeError) as exc:
        raise InvalidTask(f"not an overgang.v1.TaskUpdate: {exc}") from None
    return task_report(update, now)


def task_report(update: coordination_pb2.TaskUpdate, now: dt.datetime) -> TaskReport:
    """The task of an update; raises InvalidTask. `now` stands in for a missing updatedAt."""
    task = update.task
    if not task.task_id or len(task.task_id) > 128:
        raise InvalidTask("task.taskId is required (at most 128 characters)")
    if not EPISODE_ID.match(task.episode_id):
        raise InvalidTask("task.episodeId must be '<HER-id digits>:<local episode number>'")
    if len(task.unit) > 120:
        raise InvalidTask("task.unit is longer than 120 characters")
    if contains_national_id(task.task_id) or contains_national_id(task.unit):
        raise InvalidTask("task.taskId and task.unit must not hold a national id")
    if task.status == coordination_pb2.TASK_STATUS_UNSPECIFIED:
        raise InvalidTask("task.status is unspecified")
    try:
        kind = coordination_pb2.TaskKind.Name(task.kind).removeprefix("TASK_KIND_")
        status = coordination_pb2.TaskStatus.Name(task.status).removeprefix("TASK_STATUS_")
    except ValueError as exc:
        raise InvalidTask(f"task.kind or task.status is not known: {exc}") from None
    return TaskReport(
        task_id=task.task_id,
        episode_id=task.episode_id,
        unit=task.unit,
        kind=kind,
        status=status,
        version=task.version,
        updated_at=(
            task.updated_at.ToDatetime(tzinfo=dt.UTC) if task.HasField("updated_at") else now
        ),
    )
