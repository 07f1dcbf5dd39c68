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


@dataclass
class _Run:
    total: int
    err: TextIO
    done: int = 0
    accepted: int = 0
    rejected: int = 0
    no_national_id: int = 0  # episodes whose first event in the run lacked one
    too_old: int = 0  # refused as older than the services' plausibility window
    last_day: dt.date | None = None  # of the events read (Oslo)
    known: set[str] = field(default_factory=set)  # episodes with an accepted event
    first_rejected: dict[str, int] = field(default_factory=dict)  # episode -> its line
    _next_progress: float = field(default_factory=lambda: time.monotonic() + PROGRESS_SECONDS)

    def progress(self, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now < self._next_progress:
            return
        self._next_progress = now + PROGRESS_SECONDS
        share = 100 * self.done // self.total if self.total else 100
        end = "\n" if final or not self.err.isatty() else "\r"
        self.err.write(
            f"  {self.done}/{self.total} lines ({share} %): "
            f"{self.accepted} accepted, {self.rejected} rejected{end}"
        )
        self.err.flush()


def _submit_one(clients: Clients, item: Submission, run: _Run) -> str | None:
    """None when accepted, else the reason."""
    assert item.event is not None
    episode = item.event.episode_id
    first_in_run = episode not in run.known and episode not in run.first_rejected
    gave_up = episode in run.first_rejected and episode not in run.known
    day = item.event.oslo_day
    run.last_day = max(run.last_day or day, day)
    try:
        clients.submit(item, wait_for_episode=not gave_up)
    except grpc.RpcError as error:
        violations = field_violations(error)
        if first_in_run:
            run.first_rejected[episode] = item.line
            run.no_national_id += any(f == "nationalId" for f, _ in violations)
        run.too_old += any(r.endswith("before now") for _, r in violations)
        if gave_up and error.code() == grpc.StatusCode.NOT_FOUND:
            line = run.first_rejected[episode]
            return f"episode {episode} is unknown: its first event (line {line}) was rejected"
        return describe_error(error)
    run.known.add(episode)
    return None


def _count_lines(path: str) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip() and not line.lstrip().startswith("#"))


def cmd_submit(settings: Settings, path: str, token: str | None, out: TextIO, err: TextIO) -> int:
    run = _Run(total=_count_lines(path), err=err)
    clients = Clients(settings, token)
    try:
        with open(path, encoding="utf-8") as handle:
            for item in read_submissions(handle):
                run.done += 1
                if isinstance(item, tuple):
                    reason: str | None = item[1]
                    line = item[0]
                else:
                    reason, line = _submit_one(clients, item, run), item.line
                if reason is None:
                    run.accepted += 1
                else:
                    run.rejected += 1
                    out.write(f"line {line}: rejected: {reason}\n")
                run.progress()
    finally:
        clients.close()
    if run.total >= 100:
        run.progress(final=True)
    out.write(f"submitted: {run.accepted} accepted, {run.rejected} rejected\n")
    if run.no_national_id:
        out.write(
            f"{run.no_national_id} episodes' first event was refused for lack of a national id: "
            'it needs one, as {"event": {...}, "nationalId": "..."}; the replay format has '
            "none (`make demo` writes a submit-ready file: .data/demo/submit.jsonl)\n"
        )
    if run.too_old and run.last_day is not None:
        after = run.last_day + dt.timedelta(days=1)
        out.write(
            f"{run.too_old} events were refused as too old for the services' today: for a past "
            f"month start them with that month's end as today, e.g. "
            f"OVERGANG_CLOCK_DATE={after.isoformat()} overgang up\n"
        )
    return 1 if run.rejected else 0


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
