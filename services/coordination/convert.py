"""Wire forms <-> domain: PathwayEvent -> PathwayChange, Task -> overgang.v1.Task, and the
checked values of the CoordinationService requests (field violations under the proto
JSON names)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from typing import Any

from google.protobuf.message import DecodeError

from coordination.domain.planning import PathwayChange
from coordination.domain.task import Task, UnitKind
from overgang.codec import EPISODE_ID, InvalidEvent, event_from_proto, event_to_proto
from overgang.events import Need, oslo_day
from overgang.grpc.errors import FieldViolation
from overgang.national_ids import contains_national_id
from overgang.v1 import coordination_pb2, events_pb2, pathway_pb2
from overgang.vocabulary import Stage

MESSAGE = "overgang.v1.PathwayEvent"
UNIT = re.compile(r"^[A-Z0-9_]{1,64}(/[A-Z0-9_]{1,64})*$")
FUTURE_SLACK = dt.timedelta(minutes=5)


def _stage(value: Any, path: str) -> Stage | None:
    if value == pathway_pb2.STAGE_UNSPECIFIED:
        return None
    try:
        return Stage(pathway_pb2.Stage.Name(value).removeprefix("STAGE_"))
    except ValueError:
        raise InvalidEvent(path, f"unknown stage {value}") from None


def decode_pathway_event(
    value: bytes | None, received_at: dt.datetime | None = None
) -> PathwayChange:
    """Validate a record of overgang.pathway-events.v1; InvalidEvent names the field.
    `received_at` is the change time of last resort (no cause, history or updated_at)."""
    if value is None:
        raise InvalidEvent("$", "record has no value")
    msg = pathway_pb2.PathwayEvent()
    try:
        msg.ParseFromString(value)
    except DecodeError as exc:
        raise InvalidEvent("$", f"not a protobuf {MESSAGE}: {exc}") from None
    return change_from_proto(msg, received_at)


def change_from_proto(
    msg: pathway_pb2.PathwayEvent, received_at: dt.datetime | None = None
) -> PathwayChange:
    if not msg.event_id:
        raise InvalidEvent("eventId", "is required")
    if not EPISODE_ID.match(msg.episode_id):
        raise InvalidEvent("episodeId", "must be '<HER-id digits>:<local episode number>'")
    cause = None
    if msg.HasField("cause") and msg.cause.WhichOneof("payload") is not None:
        try:
            cause = event_from_proto(msg.cause)
        except InvalidEvent as exc:
            raise InvalidEvent(f"cause.{exc.field}", exc.reason) from None
        if cause.episode_id != msg.episode_id:
            raise InvalidEvent("cause.episodeId", "differs from the pathway event's episodeId")
    from_stage = _stage(msg.from_stage, "fromStage")
    to_stage = _stage(msg.to_stage, "toStage")
    if cause is None and to_stage is None:
        raise InvalidEvent("cause", "a pathway event needs a cause or a stage change")
    pathway = msg.pathway
    municipality = pathway.municipality or (cause.municipality if cause else "")
    if len(municipality) != 4 or not municipality.isdigit():
        raise InvalidEvent("pathway.municipality", "must be a four-digit kommunenummer")
    division = ""
    if pathway.division != events_pb2.DIVISION_UNSPECIFIED:
        division = events_pb2.Division.Name(pathway.division)
    elif cause is not None:
        division = cause.division.value
    needs = tuple(
        Need(events_pb2.Need.Name(n)) for n in pathway.needs if n != events_pb2.NEED_UNSPECIFIED
    )
    if contains_national_id(pathway.patient_pseudonym):
        # Only the pathway database may hold the number; never store it here.
        raise InvalidEvent("pathway.patientPseudonym", "holds a national id, not a pseudonym")
    return PathwayChange(
        event_id=msg.event_id,
        episode_id=msg.episode_id,
        at=_change_time(msg, cause, received_at),
        municipality=municipality,
        division=division,
        patient_pseudonym=pathway.patient_pseudonym,
        from_stage=from_stage,
        to_stage=to_stage,
        cause=cause,
        needs=needs,
    )


def _change_time(
    msg: pathway_pb2.PathwayEvent, cause: object, received_at: dt.datetime | None
) -> dt.datetime:
    """Event time: the cause's occurred_at; for a change without a cause (e.g. a task
    done), the newest history entry, else the pathway's updated_at."""
    if cause is not None:
        return cause.occurred_at  # type: ignore[attr-defined, no-any-return]
    history = [h for h in msg.pathway.history if h.HasField("at")]
    if history:
        return history[-1].at.ToDatetime(tzinfo=dt.UTC)  # type: ignore[no-any-return]
    if msg.pathway.HasField("updated_at"):
        return msg.pathway.updated_at.ToDatetime(tzinfo=dt.UTC)  # type: ignore[no-any-return]
    if msg.HasField("cause") and msg.cause.HasField("occurred_at"):
        return msg.cause.occurred_at.ToDatetime(tzinfo=dt.UTC)  # type: ignore[no-any-return]
    if received_at is not None:
        return received_at
    raise InvalidEvent("pathway.updatedAt", "is required when the event has no cause")


def _stamp(target: object, value: dt.datetime) -> None:
    target.FromDatetime(value.astimezone(dt.UTC))  # type: ignore[attr-defined]


def task_to_proto(task: Task) -> coordination_pb2.Task:
    msg = coordination_pb2.Task(
        task_id=task.task_id,
        episode_id=task.episode_id,
        municipality=task.municipality,
        unit=task.unit,
        kind=coordination_pb2.TaskKind.Value(f"TASK_KIND_{task.kind.value}"),
        title=task.title,
        priority=coordination_pb2.Priority.Value(f"PRIORITY_{task.priority.value}"),
        status=coordination_pb2.TaskStatus.Value(f"TASK_STATUS_{task.status.value}"),
        escalated=task.escalated,
        escalated_to=task.escalated_to,
        claimed_by=task.claimed_by,
        trigger_event_id=task.trigger_event_id,
        cancel_reason=task.cancel_reason,
        version=task.version,
    )
    _stamp(msg.due_at, task.due_at)
    _stamp(msg.created_at, task.created_at)
    _stamp(msg.updated_at, task.updated_at)
    return msg


def change_to_proto(change: PathwayChange) -> pathway_pb2.PathwayEvent:
    """The inverse of `change_from_proto` (tools and tests produce pathway events)."""
    msg = pathway_pb2.PathwayEvent(event_id=change.event_id, episode_id=change.episode_id)
    if change.from_stage is not None:
        msg.from_stage = pathway_pb2.Stage.Value(f"STAGE_{change.from_stage.value}")
    if change.to_stage is not None:
        msg.to_stage = pathway_pb2.Stage.Value(f"STAGE_{change.to_stage.value}")
        msg.pathway.stage = msg.to_stage
    if change.cause is not None:
        msg.cause.CopyFrom(event_to_proto(change.cause))
    msg.pathway.episode_id = change.episode_id
    msg.pathway.municipality = change.municipality
    if change.division:
        msg.pathway.division = events_pb2.Division.Value(change.division)
    msg.pathway.patient_pseudonym = change.patient_pseudonym
    msg.pathway.needs.extend(events_pb2.Need.Value(n.value) for n in change.needs)
    _stamp(msg.pathway.updated_at, change.at)
    return msg


# ------------------------------------------------------------------ gRPC requests
def unit_violations(unit: str) -> list[FieldViolation]:
    if not unit:
        return [("unit", "is required, e.g. HEALTH_OFFICE or HEALTH_OFFICE/MADLA_HILLEVAAG")]
    if not UNIT.match(unit):
        return [("unit", "must be <UNIT_KIND>[/<OFFICE>] in [A-Z0-9_]")]
    if unit.split("/")[0] not in UnitKind.__members__:
        kinds = ", ".join(UnitKind.__members__)
        return [("unit", f"must start with a unit kind: {kinds}")]
    return []


def episode_violations(episode_id: str) -> list[FieldViolation]:
    if not episode_id:
        return [("episodeId", "is required")]
    if not EPISODE_ID.match(episode_id):
        return [("episodeId", "must be '<HER-id digits>:<local episode number>'")]
    return []


def timestamp(msg: Any, name: str, default: dt.datetime) -> dt.datetime:
    if msg.HasField(name):
        return getattr(msg, name).ToDatetime(tzinfo=dt.UTC)  # type: ignore[no-any-return]
    return default


def municipal_event_id(prefix: str, msg: Any, stamp: str, *parts: str) -> str:
    """Deterministic when the request gives its time (`stamp` is that field), so a retried
    request is the same event; else unique."""
    if not msg.HasField(stamp):
        return f"{prefix}-{uuid.uuid4().hex}"
    return f"{prefix}-{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:32]}"


def answer_violations(
    request: coordination_pb2.AnswerHospitalRequest, answered_at: dt.datetime, now: dt.datetime
) -> tuple[list[FieldViolation], dt.date | None]:
    """Every violation of an AnswerHospital request, and its expected ready date."""
    violations = episode_violations(request.episode_id)
    expected: dt.date | None = None
    text = request.expected_ready_date
    if not text and not request.can_receive:
        violations.append(("expectedReadyDate", "is required when the municipality cannot receive"))
    elif text:
        try:
            if len(text) != 10:
                raise ValueError(text)
            expected = dt.date.fromisoformat(text)
        except ValueError:
            violations.append(("expectedReadyDate", "must be a date YYYY-MM-DD"))
    if answered_at > now + FUTURE_SLACK:
        violations.append(("answeredAt", "must not be in the future"))
    if expected is not None and expected < oslo_day(answered_at):
        violations.append(("expectedReadyDate", "must not be before the day of the answer"))
    return violations, expected


def ready_violations(
    request: coordination_pb2.ReportServiceReadyRequest, ready_at: dt.datetime, now: dt.datetime
) -> list[FieldViolation]:
    violations = episode_violations(request.episode_id)
    if ready_at > now + FUTURE_SLACK:
        violations.append(("readyAt", "must not be in the future"))
    return violations
