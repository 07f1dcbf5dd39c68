"""The gRPC clients of the running services, with the paging and stream helpers the views
share, and the `tasks` and `pathway` commands (`submit` is in tooling.submit)."""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

import grpc

from overgang.codec import event_to_proto
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

    def submit(self, submission: Submission, wait_for_episode: bool = True) -> str:
        """Returns the accepted event id; raises grpc.RpcError with the reason. A municipal
        event waits (up to 20 s) for coordination to learn of its episode, unless
        `wait_for_episode` is False: then an unknown episode is NOT_FOUND at once."""
        event = submission.event
        assert event is not None
        retry: Callable[[Callable[[], T]], T] = (
            retry_not_found if wait_for_episode else lambda call: call()
        )
        if event.kind is EventKind.MUNICIPALITY_ANSWERED:
            answer = coordination_pb2.AnswerHospitalRequest(
                episode_id=event.episode_id,
                can_receive=bool(event.can_receive),
                expected_ready_date=event.expected_ready_date.isoformat()
                if event.expected_ready_date
                else "",
            )
            answer.answered_at.FromDatetime(event.occurred_at.astimezone(dt.UTC))
            reply = retry(
                lambda: self.coordination.AnswerHospital(
                    answer, timeout=RPC_TIMEOUT, metadata=self.md
                )
            )
            return str(reply.event_id)
        if event.kind is EventKind.SERVICE_READY:
            ready = coordination_pb2.ReportServiceReadyRequest(episode_id=event.episode_id)
            ready.ready_at.FromDatetime(event.occurred_at.astimezone(dt.UTC))
            reply = retry(
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

    def pathways(self, municipality: str = "", page_size: int = 500) -> Iterator[Any]:
        """Every pathway in the caller's scope (ListPathways, all pages), with history."""
        token = ""
        while True:
            page = self.pathway.ListPathways(
                pathway_pb2.ListPathwaysRequest(
                    municipality=municipality, page_size=page_size, page_token=token
                ),
                timeout=RPC_TIMEOUT,
                metadata=self.md,
            )
            yield from page.pathways
            token = page.next_page_token
            if not token:
                return

    def running_clocks(self, municipality: str = "") -> list[Any]:
        """Every running clock (ListRunningClocks, all pages)."""
        clocks: list[Any] = []
        token = ""
        while True:
            page = self.liability.ListRunningClocks(
                liability_pb2.ListRunningClocksRequest(
                    municipality=municipality, page_size=1000, page_token=token
                ),
                timeout=RPC_TIMEOUT,
                metadata=self.md,
            )
            clocks.extend(page.episodes)
            token = page.next_page_token
            if not token:
                return clocks

    def task_stream(self, unit: str, after: int = 0) -> Any:
        """StreamTasks(unit): with `after` 0 the backlog of open tasks, then live updates."""
        return self.coordination.StreamTasks(
            coordination_pb2.StreamTasksRequest(unit=unit, after_sequence=after), metadata=self.md
        )


def pump(call: Any, into: queue.Queue[Any]) -> threading.Thread:
    """Copies a server stream into `into` on a daemon thread: each message, then the
    grpc.RpcError that ended it (if any), then None."""

    def run() -> None:
        try:
            for item in call:
                into.put(item)
        except grpc.RpcError as error:
            into.put(error)
        into.put(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def drain(calls: list[Any], idle: float | None = 1.5) -> Iterator[Any]:
    """The messages of server streams that never end by themselves (backlog, then live),
    until every stream ended or, with `idle`, none sent anything for `idle` seconds; then
    the streams are cancelled. An error other than CANCELLED is raised."""
    updates: queue.Queue[Any] = queue.Queue()
    for call in calls:
        pump(call, updates)
    running = len(calls)
    try:
        while running:
            try:
                item = updates.get(timeout=idle)
            except queue.Empty:
                return
            if item is None:
                running -= 1
            elif isinstance(item, grpc.RpcError):
                if item.code() != grpc.StatusCode.CANCELLED:
                    raise item
            else:
                yield item
    finally:
        for call in calls:
            call.cancel()


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
    try:
        for update in drain([clients.task_stream(unit, after)], None if follow else 1.5):
            out.write(task_line(update) + "\n")
            out.flush()
    except grpc.RpcError as error:
        out.write(f"error: {describe_error(error)}\n")
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        clients.close()
    return 0


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
