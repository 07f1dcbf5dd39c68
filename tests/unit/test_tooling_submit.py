"""`overgang submit` without services: the file formats it reads and writes, and that an
episode whose first event was rejected gets no 20 s wait for its answers."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from overgang.codec import event_to_json
from overgang.config import Settings
from overgang.events import OSLO, Division, EpisodeEvent, EventKind
from tooling import submit
from tooling.clients import Submission


def event(episode: str, n: int, kind: EventKind, **extra: Any) -> EpisodeEvent:
    return EpisodeEvent(
        event_id=f"{episode}:{n:02d}",
        episode_id=episode,
        occurred_at=dt.datetime(2024, 3, 4, 8 + n, tzinfo=OSLO),
        municipality="1103",
        division=Division.SOMATIC,
        kind=kind,
        **extra,
    )


EVENTS = [
    event("80001:A", 1, EventKind.ADMITTED),
    event("80001:B", 1, EventKind.ADMITTED),
    event(
        "80001:A",
        2,
        EventKind.DISCHARGE_READY_NOTIFIED,
        ready_at=dt.datetime(2024, 3, 4, 8, tzinfo=OSLO),
    ),
    event("80001:A", 3, EventKind.MUNICIPALITY_ANSWERED, can_receive=True),
]


class Refused(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, message: str, field: str = "") -> None:
        self._code, self._message = code, message
        status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message)
        if field:
            detail = any_pb2.Any()
            bad = error_details_pb2.BadRequest()
            bad.field_violations.add(field=field, description=message)
            detail.Pack(bad)
            status.details.append(detail)
        self._trailers = (("grpc-status-details-bin", status.SerializeToString()),)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return self._trailers


class FakeClients:
    """PathwayService wants a national id on a new episode; coordination knows only the
    episodes PathwayService accepted (and would make an unknown one wait 20 s)."""

    waits: list[tuple[str, bool]] = []

    def __init__(self, settings: Settings, token: str | None = None) -> None:
        self.known: set[str] = set()

    def submit(self, item: Submission, wait_for_episode: bool = True) -> str:
        assert item.event is not None
        episode = item.event.episode_id
        if item.event.kind is EventKind.MUNICIPALITY_ANSWERED:
            FakeClients.waits.append((episode, wait_for_episode))
            if episode not in self.known:
                raise Refused(grpc.StatusCode.NOT_FOUND, f"episode {episode} is not known")
        elif episode not in self.known and not item.national_id:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "is required", field="nationalId")
        self.known.add(episode)
        return item.event.event_id

    def close(self) -> None:
        pass


def test_the_submit_ready_file_has_a_marked_header_and_one_national_id_per_episode(
    tmp_path: Path,
) -> None:
    ids = {"80001:A": "01810012345", "80001:B": "02820012345"}
    path = submit.write_submit_file(tmp_path / "s.jsonl", EVENTS[:3], EVENTS[3:], ids)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# SYNTHETIC TEST DATA") and "test numbers" in lines[1]
    bodies = [json.loads(line) for line in lines if not line.startswith("#")]
    assert [b.get("nationalId") for b in bodies] == ["01810012345", "02820012345", None, None]
    with path.open() as handle:
        read = list(submit.read_submissions(handle))
    assert [
        (s.event.event_id, s.national_id) for s in read if isinstance(s, Submission) and s.event
    ] == [
        ("80001:A:01", "01810012345"),
        ("80001:B:01", "02820012345"),
        ("80001:A:02", ""),
        ("80001:A:03", ""),
    ]


def test_a_bad_line_is_reported_with_its_number() -> None:
    read = list(submit.read_submissions(io.StringIO('# a comment\n\n{"eventId": 1\n')))
    assert len(read) == 1 and isinstance(read[0], tuple) and read[0][0] == 3


@pytest.mark.parametrize(("with_ids", "expected_wait"), [(False, False), (True, True)])
def test_answers_wait_only_for_episodes_whose_first_event_was_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_ids: bool, expected_wait: bool
) -> None:
    monkeypatch.setattr(submit, "Clients", FakeClients)
    FakeClients.waits = []
    path = tmp_path / "events.jsonl"
    ids = {"80001:A": "01810012345", "80001:B": "02820012345"}
    lines = (
        submit.submission_lines(EVENTS, ids)
        if with_ids  # else the replay format: no national ids
        else [event_to_json(e) + "\n" for e in EVENTS]
    )
    path.write_text("".join(lines))
    out, err = io.StringIO(), io.StringIO()
    status = submit.cmd_submit(Settings(), str(path), None, out, err)
    assert FakeClients.waits == [("80001:A", expected_wait)]
    if with_ids:
        assert status == 0 and "submitted: 4 accepted, 0 rejected" in out.getvalue()
    else:
        text = out.getvalue()
        assert status == 1 and "submitted: 0 accepted, 4 rejected" in text
        assert (
            "line 4: rejected: episode 80001:A is unknown: its first event (line 1) was rejected"
            in text
        )
        assert "2 episodes' first event was refused for lack of a national id" in text


class LaggingClients(FakeClients):
    """Coordination has not caught up on the pathway stream for the first answer."""

    def __init__(self, settings: Settings, token: str | None = None) -> None:
        super().__init__(settings, token)
        self.behind = True

    def submit(self, item: Submission, wait_for_episode: bool = True) -> str:
        assert item.event is not None
        if item.event.kind is EventKind.MUNICIPALITY_ANSWERED and self.behind:
            self.behind = False
            raise Refused(grpc.StatusCode.NOT_FOUND, "episode is not known")
        return super().submit(item, wait_for_episode)


def test_an_answer_coordination_does_not_know_yet_is_tried_again_at_the_end() -> None:
    sender = submit.Sender(LaggingClients(Settings()))  # type: ignore[arg-type]
    nid = {"80001:A": "01810012345", "80001:B": "02820012345"}
    answer_b = event("80001:B", 2, EventKind.MUNICIPALITY_ANSWERED, can_receive=True)
    outcomes = [
        sender.send(Submission(n, e, nid.get(e.episode_id, "") if n < 3 else ""))
        for n, e in enumerate([*EVENTS[:2], EVENTS[3], answer_b], start=1)
    ]
    assert [o.reason if o else "later" for o in outcomes] == [None, None, "later", None]
    assert [(o.item.line, o.reason) for o in sender.finish()] == [(3, None)]
