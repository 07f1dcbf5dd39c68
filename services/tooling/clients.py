"""CLI commands that talk to the running services over gRPC: submit, tasks, pathway."""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

import grpc
from google.protobuf import json_format

from overgang.codec import InvalidEvent, event_from_proto, event_to_proto
from overgang.config import Settings
from overgang.events import OSLO, EpisodeEvent, EventKind
from overgang.grpc.auth import bearer
from overgang.grpc.errors import field_violations
from overgang.grpc.tls import secure_channel
from overgang.v1 import (
    coordination_pb2,
    coordination_pb2_grpc,
    events_pb2,
    liability_pb2,
    liability_pb2_grpc,
    pathway_pb2,
    pathway_pb2_grpc,
)

RPC_TIMEOUT = 10.0
T = TypeVar("T")


def metadata(token: str | None) -> list[tuple[str, str]]:
    return bearer(token) if token else []


def describe_error(error: grpc.RpcError) -> str:
    violations = field_violations(error)
    if violations:
        return f"{error.code().name}: " + "; ".join(f"{f}: {r}" for f, r in violations)
    return f"{error.code().name}: {error.details()}"


@dataclass
class Submission:
    line: int
    event: EpisodeEvent | None
    national_id: str


def read_submissions(handle: TextIO) -> Iterator[Submission | tuple[int, str]]:
    """Lines are either an Event (replay format) or a SubmitHospitalEventRequest
    (`{"event": {...}, "nationalId": "..."}`): the national id is needed on an episode's
    first event and never leaves the pathway service."""
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if isinstance(raw, dict) and "event" in raw:
                request = json_format.ParseDict(raw, pathway_pb2.SubmitHospitalEventRequest())
                yield Submission(number, event_from_proto(request.event), request.national_id)
            else:
                yield Submission(
                    number, event_from_proto(json_format.ParseDict(raw, events_pb2.Event())), ""
                )
        except (ValueError, json_format.ParseError) as exc:
            reason = str(exc) if isinstance(exc, InvalidEvent) else f"not a valid event: {exc}"
            yield (number, reason)


def retry_not_found(call: Callable[[], T], attempts: int = 40, pause: float = 0.5) -> T:
    """The coordination service learns of an episode from the pathway stream a moment
    after the hospital's event: an answer sent right after the notice waits for it."""
    for attempt in range(attempts):
        try:
            return call()
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND or attempt == attempts - 1:
                raise
            time.sleep(pause)
    raise AssertionError("unreachable")


class Clients:
    def __init__(self, settings: Settings, token: str | None = None) -> None:
        self.md = metadata(token)
        # TLS when OVERGANG_TLS_CA (and for mTLS OVERGANG_TLS_CLIENT_CERT/_KEY) is set.
        self._channels = [
            secure_channel(settings, address)
            for address in (
                settings.pathway_grpc,
                settings.coordination_grpc,
                settings.discharge_grpc,
            )
        ]
        self.pathway = pathway_pb2_grpc.PathwayServiceStub(self._channels[0])
        self.coordination = coordination_pb2_grpc.CoordinationServiceStub(self._channels[1])
        self.liability = liability_pb2_grpc.LiabilityServiceStub(self._channels[2])

    def close(self) -> None:
        for channel in self._channels:
            channel.close()

    def submit(self, submission: Submission) -> str:
        """Returns the accepted event id; raises grpc.RpcError with the reason."""
        event = submission.event
        assert event is not None
        if event.kind is EventKind.MUNICIPALITY_ANSWERED:
            answer = coordination_pb2.AnswerHospitalRequest(
                episode_id=event.episode_id,
                can_receive=bool(event.can_receive),
                expected_ready_date=event.expected_ready_date.isoformat()
                if event.expected_ready_date
                else "",
            )
            answer.answered_at.FromDatetime(event.occurred_at.astimezone(dt.UTC))
            reply = retry_not_found(
                lambda: self.coordination.AnswerHospital(
                    answer, timeout=RPC_TIMEOUT, metadata=self.md
                )
            )
            return str(reply.event_id)
        if event.kind is EventKind.SERVICE_READY:
            ready = coordination_pb2.ReportServiceReadyRequest(episode_id=event.episode_id)
            ready.ready_at.FromDatetime(event.occurred_at.astimezone(dt.UTC))
            reply = retry_not_found(
                lambda: self.coordination.ReportServiceReady(
                    ready, timeout=RPC_TIMEOUT, metadata=self.md
                )
            )
            return str(reply.event_id)
        request = pathway_pb2.SubmitHospitalEventRequest(
            event=event_to_proto(event), national_id=submission.national_id
        )
        result = self.pathway.SubmitHospitalEvent(request, timeout=RPC_TIMEOUT, metadata=self.md)
        return f"{result.event_id}{' (duplicate)' if result.duplicate else ''}"


def cmd_submit(settings: Settings, path: str, token: str | None, out: TextIO) -> int:
    clients = Clients(settings, token)
    accepted = rejected = 0
    try:
        with open(path, encoding="utf-8") as handle:
            for item in read_submissions(handle):
                if isinstance(item, tuple):
                    rejected += 1
                    out.write(f"line {item[0]}: rejected: {item[1]}\n")
                    continue
                try:
                    clients.submit(item)
                    accepted += 1
                except grpc.RpcError as error:
                    rejected += 1
                    out.write(f"line {item.line}: rejected: {describe_error(error)}\n")
    finally:
        clients.close()
    out.write(f"submitted: {accepted} accepted, {rejected} rejected\n")
    return 1 if rejected else 0


def _stage(value: int) -> str:
    return pathway_pb2.Stage.Name(value).removeprefix("STAGE_")  # type: ignore[arg-type]


def task_line(update: Any) -> str:
    task = update.task
    due = task.due_at.ToDatetime(tzinfo=dt.UTC).astimezone(OSLO).strftime("%Y-%m-%d %H:%M")
    flags = " ESCALATED" if task.escalated else ""
    return (
        f"#{update.sequence:<6} {task.unit:<32} "
        f"{coordination_pb2.TaskKind.Name(task.kind).removeprefix('TASK_KIND_'):<24} "
        f"{coordination_pb2.TaskStatus.Name(task.status).removeprefix('TASK_STATUS_'):<9} "
        f"due {due}  {task.episode_id}  {task.title}{flags}"
    )


def cmd_tasks(
    settings: Settings, unit: str, follow: bool, after: int, token: str | None, out: TextIO
) -> int:
    """Backlog first, then (with --follow) live updates; without --follow, stop once the
    stream has been quiet for a moment."""
    clients = Clients(settings, token)
    call = clients.coordination.StreamTasks(
        coordination_pb2.StreamTasksRequest(unit=unit, after_sequence=after), metadata=clients.md
    )
    updates: queue.Queue[Any] = queue.Queue()

    def pump() -> None:
        try:
            for update in call:
                updates.put(update)
        except grpc.RpcError as error:
            updates.put(error)
        updates.put(None)

    threading.Thread(target=pump, daemon=True).start()
    status = 0
    try:
        while True:
            try:
                item = updates.get(timeout=None if follow else 1.5)
            except queue.Empty:
                break
            if item is None:
                break
            if isinstance(item, grpc.RpcError):
                if item.code() != grpc.StatusCode.CANCELLED:
                    out.write(f"error: {describe_error(item)}\n")
                    status = 1
                break
            out.write(task_line(item) + "\n")
            out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        call.cancel()
        clients.close()
    return status


def cmd_pathway(settings: Settings, episode_id: str, token: str | None, out: TextIO) -> int:
    clients = Clients(settings, token)
    try:
        try:
            pathway = clients.pathway.GetPathway(
                pathway_pb2.GetPathwayRequest(episode_id=episode_id),
                timeout=RPC_TIMEOUT,
                metadata=clients.md,
            )
        except grpc.RpcError as error:
            out.write(f"pathway: {describe_error(error)}\n")
            return 1
        out.write(f"episode      {pathway.episode_id}\n")
        out.write(f"stage        {_stage(pathway.stage)}\n")
        out.write(f"municipality {pathway.municipality}\n")
        out.write(f"division     {events_pb2.Division.Name(pathway.division)}\n")
        out.write(f"patient      {pathway.patient_pseudonym}\n")
        out.write(
            f"needs        {', '.join(events_pb2.Need.Name(n) for n in pathway.needs) or '-'}\n"
        )
        out.write(f"open units   {', '.join(pathway.units) or '-'}\n")
        for change in pathway.history:
            at = change.at.ToDatetime(tzinfo=dt.UTC).isoformat()
            move = f"{_stage(change.from_stage)} -> {_stage(change.to_stage)}"
            out.write(f"  {at}  {move}  {change.reason}\n")
        try:
            s = clients.liability.GetEpisode(
                liability_pb2.GetEpisodeRequest(episode_id=episode_id),
                timeout=RPC_TIMEOUT,
                metadata=clients.md,
            )
            status = liability_pb2.PeriodStatus.Name(s.status)
            out.write(
                f"liability    {status}, {s.liable_days} days, NOK {s.amount_nok} "
                f"(as of {s.as_of}){' ERROR ' + s.error if s.error else ''}\n"
            )
            for p in s.periods:
                out.write(
                    f"  period {p.start} -> {p.end or '…'}  {p.days} days  NOK {p.amount_nok}  "
                    f"{liability_pb2.PeriodStatus.Name(p.status)} {p.end_cause}\n"
                )
        except grpc.RpcError as error:
            out.write(f"liability    {describe_error(error)}\n")
    finally:
        clients.close()
    return 0
