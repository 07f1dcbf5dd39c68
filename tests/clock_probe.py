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


def service_statement(
    stub: liability_pb2_grpc.LiabilityServiceStub, episode: str
) -> dict[str, object]:
    """LiabilityService.GetEpisode in the replay JSON shape."""
    s = stub.GetEpisode(pb.GetEpisodeRequest(episode_id=episode), timeout=5)
    return {
        "episodeId": s.episode_id,
        "status": STATUS[s.status],
        "liableDays": s.liable_days,
        "amountNok": s.amount_nok,
        "voidReason": pb.VoidReason.Name(s.void_reason) if s.void_reason else None,
        "municipality": s.municipality,
        "periods": [
            {"start": p.start, "end": p.end or None, "days": p.days, "amountNok": p.amount_nok}
            for p in s.periods
        ],
    }
