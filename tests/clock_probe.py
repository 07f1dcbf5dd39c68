"""Helpers for tests that compare the running clock with `overgang replay`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from overgang.v1 import liability_pb2 as pb
from overgang.v1 import liability_pb2_grpc

CLOCK_DATE = "2024-04-01"
STATUS = {pb.RUNNING: "RUNNING", pb.ENDED: "ENDED", pb.VOID: "VOID", pb.NOT_STARTED: "NOT_STARTED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def replay_statements(path: Path) -> dict[str, dict[str, object]]:
    """`overgang replay --json` as the user runs it, keyed by episode id."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tooling.cli",
            "replay",
            str(path),
            "--json",
            "--as-of",
            CLOCK_DATE,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return {e["episodeId"]: e for e in json.loads(out.stdout)["episodes"]}


def _id(value: str) -> str | None:
    return value or None


def _period(p: pb.Period) -> dict[str, object]:
    e = p.evidence
    return {
        "start": p.start,
        "end": p.end or None,
        "status": STATUS[p.status],
        "municipality": p.municipality,
        "voidReason": pb.VoidReason.Name(p.void_reason) if p.void_reason else None,
        "endCause": p.end_cause or None,
        "liableDays": p.days,
        "pendingDays": p.pending_days,
        "amountNok": p.amount_nok,
        "notLiableReason": p.not_liable_reason or None,
        "evidence": {
            "startedBy": e.started_by,
            "endedBy": _id(e.ended_by),
            "voidedBy": _id(e.voided_by),
            "admissionNotice": _id(e.admission_notice),
            "cooperationMeeting": _id(e.cooperation_meeting),
            "answers": list(e.answers),
            "updates": list(e.updates),
        },
    }


def service_statement(
    stub: liability_pb2_grpc.LiabilityServiceStub, episode: str
) -> dict[str, object]:
    """LiabilityService.GetEpisode in the replay JSON shape (DESIGN.md), every field."""
    s = stub.GetEpisode(pb.GetEpisodeRequest(episode_id=episode), timeout=5)
    return {
        "episodeId": s.episode_id,
        "status": STATUS[s.status],
        "liableDays": s.liable_days,
        "pendingDays": s.pending_days,
        "amountNok": s.amount_nok,
        "voidReason": pb.VoidReason.Name(s.void_reason) if s.void_reason else None,
        "municipality": s.municipality,
        "error": s.error or None,
        "conflicts": [
            {
                "kind": c.kind,
                "eventId": c.event_id,
                "relatedEventId": c.related_event_id,
                "reason": c.reason,
            }
            for c in s.conflicts
        ],
        "periods": [_period(p) for p in s.periods],
    }
