"""`overgang submit FILE`: events from a file to the running services, and the
submit-ready file the demo writes for it.

A line is an Event (replay format) or `{"event": {...}, "nationalId": "..."}` (the
national id is needed on an episode's first event). An episode whose first event in the
run was rejected is not known to the services: its municipal answers are then refused at
once instead of waiting for the coordination service to learn of it. Progress goes to
stderr on long files; lines starting with `#` are comments.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import grpc
from google.protobuf import json_format

from overgang.codec import InvalidEvent, event_from_proto, event_to_json
from overgang.config import Settings
from overgang.events import MUNICIPAL_KINDS, EpisodeEvent
from overgang.grpc.errors import field_violations
from overgang.v1 import events_pb2, pathway_pb2
from tooling.clients import Clients, Submission, describe_error

PROGRESS_SECONDS = 2.0
SUBMIT_FILE_HEADER = (
    "# SYNTHETIC TEST DATA for `overgang submit` (written by `make demo`).",
    "# The national ids are synthetic test numbers (birth month + 80, as Tenor test persons",
    "# have), never a real person's. Hospital events first, then the municipality's answers.",
)


def read_submissions(handle: TextIO) -> Iterator[Submission | tuple[int, str]]:
    """Lines are either an Event (replay format) or a SubmitHospitalEventRequest
    (`{"event": {...}, "nationalId": "..."}`): the national id is needed on an episode's
    first event and never leaves the pathway service. Blank and `#` lines are skipped."""
    for number, line in enumerate(handle, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
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


@dataclass(frozen=True)
class Outcome:
    item: Submission
    event_id: str = ""  # accepted: the id the service gave it
    reason: str | None = None  # rejected: why


class Sender:
    """Sends submissions in order and learns from the answers. An answer for an episode
    accepted in this run that coordination does not know yet (it learns of episodes from
    the pathway stream, which lags behind a busy broker) is tried again at the end, after
    the other lines, in order per episode; an answer for an episode whose first event in
    the run was rejected is refused at once (no wait)."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients
        self.known: set[str] = set()  # episodes with an accepted event
        self.first_rejected: dict[str, int] = {}  # episode -> the line of its first event
        self.deferred: list[Submission] = []
        self.no_national_id = 0  # episodes whose first event in the run lacked one
        self.too_old = 0  # events older than the services' plausibility window
        self.last_day: dt.date | None = None  # of the events sent (Oslo)

    def send(self, item: Submission) -> Outcome | None:
        """The outcome, or None when the item waits for `finish`."""
        assert item.event is not None
        day = item.event.oslo_day
        self.last_day = max(self.last_day or day, day)
        if any(
            d.event is not None and d.event.episode_id == item.event.episode_id
            for d in self.deferred
        ):
            self.deferred.append(item)
            return None
        return self._send(item, last_try=False)

    def finish(self) -> list[Outcome]:
        deferred, self.deferred = self.deferred, []
        return [o for item in deferred if (o := self._send(item, last_try=True)) is not None]

    def _send(self, item: Submission, last_try: bool) -> Outcome | None:
        assert item.event is not None
        episode = item.event.episode_id
        first_in_run = episode not in self.known and episode not in self.first_rejected
        gave_up = episode in self.first_rejected and episode not in self.known
        try:
            event_id = self.clients.submit(item, wait_for_episode=not gave_up)
        except grpc.RpcError as error:
            not_found = error.code() == grpc.StatusCode.NOT_FOUND
            if not_found and episode in self.known and not last_try:
                self.deferred.append(item)
                return None
            violations = field_violations(error)
            if first_in_run:
                self.first_rejected[episode] = item.line
                self.no_national_id += any(f == "nationalId" for f, _ in violations)
            self.too_old += any(r.endswith("before now") for _, r in violations)
            if gave_up and not_found:
                line = self.first_rejected[episode]
                reason = f"episode {episode} is unknown: its first event (line {line}) was rejected"
                return Outcome(item, reason=reason)
            return Outcome(item, reason=describe_error(error))
        self.known.add(episode)
        return Outcome(item, event_id=event_id)

    def hints(self) -> Iterator[str]:
        if self.no_national_id:
            yield (
                f"{self.no_national_id} episodes' first event was refused for lack of a "
                'national id: it needs one, as {"event": {...}, "nationalId": "..."}; the '
                "replay format has none (`make demo` writes a submit-ready file: "
                ".data/demo/submit.jsonl)"
            )
        if self.too_old and self.last_day is not None:
            after = self.last_day + dt.timedelta(days=1)
            yield (
                f"{self.too_old} events were refused as too old for the services' today: for a "
                "past month start them with that month's end as today, e.g. "
                f"OVERGANG_CLOCK_DATE={after.isoformat()} overgang up"
            )


@dataclass
class _Progress:
    total: int
    err: TextIO
    done: int = 0
    accepted: int = 0
    rejected: int = 0
    _next: float = field(default_factory=lambda: time.monotonic() + PROGRESS_SECONDS)

    def count(self, outcome: Outcome | None, out: TextIO) -> None:
        if outcome is None:
            return
        if outcome.reason is None:
            self.accepted += 1
        else:
            self.rejected += 1
            out.write(f"line {outcome.item.line}: rejected: {outcome.reason}\n")

    def show(self, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now < self._next:
            return
        self._next = now + PROGRESS_SECONDS
        share = 100 * self.done // self.total if self.total else 100
        end = "\n" if final or not self.err.isatty() else "\r"
        self.err.write(
            f"  {self.done}/{self.total} lines ({share} %): "
            f"{self.accepted} accepted, {self.rejected} rejected{end}"
        )
        self.err.flush()


def _count_lines(path: str) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip() and not line.lstrip().startswith("#"))


def cmd_submit(settings: Settings, path: str, token: str | None, out: TextIO, err: TextIO) -> int:
    progress = _Progress(total=_count_lines(path), err=err)
    clients = Clients(settings, token)
    sender = Sender(clients)
    try:
        with open(path, encoding="utf-8") as handle:
            for item in read_submissions(handle):
                progress.done += 1
                if isinstance(item, tuple):
                    out.write(f"line {item[0]}: rejected: {item[1]}\n")
                    progress.rejected += 1
                else:
                    progress.count(sender.send(item), out)
                progress.show()
        for outcome in sender.finish():
            progress.count(outcome, out)
    finally:
        clients.close()
    if progress.total >= 100:
        progress.show(final=True)
    out.write(f"submitted: {progress.accepted} accepted, {progress.rejected} rejected\n")
    for hint in sender.hints():
        out.write(hint + "\n")
    return 1 if progress.rejected else 0


def submission_lines(events: Iterable[EpisodeEvent], national_ids: dict[str, str]) -> Iterator[str]:
    """JSON lines for `overgang submit`: each episode's first event carries its national id."""
    seen: set[str] = set()
    for event in events:
        if event.episode_id in seen or event.kind in MUNICIPAL_KINDS:
            yield event_to_json(event) + "\n"
            continue
        seen.add(event.episode_id)
        body = json.loads(event_to_json(event))
        national_id = national_ids[event.episode_id]
        yield json.dumps({"event": body, "nationalId": national_id}, ensure_ascii=False) + "\n"


def write_submit_file(
    path: Path,
    hospital: list[EpisodeEvent],
    municipal: list[EpisodeEvent],
    national_ids: dict[str, str],
) -> Path:
    """A submit-ready file: a header that marks it synthetic, hospital events, then answers."""
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in SUBMIT_FILE_HEADER)
        handle.writelines(submission_lines([*hospital, *municipal], national_ids))
    return path
