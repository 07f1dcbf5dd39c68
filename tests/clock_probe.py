"""Helpers for tests that compare the running clock with `overgang replay`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
from kafka import KafkaConsumer

from overgang.kafka.topics import DEAD_LETTER, LIABILITY_EVENTS
from overgang.v1 import liability_pb2 as pb
from overgang.v1 import liability_pb2_grpc
from tooling.launcher import ServiceProcess

CLOCK_DATE = "2024-04-01"
STATUS = {pb.RUNNING: "RUNNING", pb.ENDED: "ENDED", pb.VOID: "VOID", pb.NOT_STARTED: "NOT_STARTED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def replay_statements(
    path: Path, as_of: str = CLOCK_DATE, *extra: str, allowed_exit: tuple[int, ...] = (0,)
) -> dict[str, dict[str, object]]:
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
            as_of,
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode in allowed_exit, out.stderr
    return {e["episodeId"]: e for e in json.loads(out.stdout)["episodes"]}


def wait_until_equal(
    address: str, expected: dict[str, dict[str, object]], timeout: float = 90
) -> None:
    """Until LiabilityService gives replay's statement for every expected episode."""
    deadline = time.monotonic() + timeout
    mismatched: dict[str, object] = {}
    with grpc.insecure_channel(address) as channel:
        stub = liability_pb2_grpc.LiabilityServiceStub(channel)
        while time.monotonic() < deadline:
            mismatched = {}
            for episode, statement in expected.items():
                try:
                    actual = service_statement(stub, episode)
                except grpc.RpcError as exc:
                    actual = {"error": exc.code().name}
                if actual != statement:
                    mismatched[episode] = (actual, statement)
            if not mismatched:
                return
            time.sleep(1)
    raise AssertionError(
        f"{len(mismatched)} episodes differ from replay, e.g. {next(iter(mismatched.items()))}"
    )


def announced_events(bootstrap: str, prefix: str) -> list[pb.LiabilityEvent]:
    """The liability topic's events of these episodes, deduplicated by id, in order."""
    consumer = KafkaConsumer(
        LIABILITY_EVENTS,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=4000,
    )
    seen: set[str] = set()
    events = []
    for record in consumer:
        event = pb.LiabilityEvent.FromString(record.value)
        if event.episode_id.startswith(prefix) and event.event_id not in seen:
            seen.add(event.event_id)
            events.append(event)
    consumer.close()
    return events


def announced_totals(bootstrap: str, prefix: str) -> dict[str, tuple[int, int]]:
    """(NOK, rate-pending days) per episode from the announced accruals and corrections."""
    totals: dict[str, tuple[int, int]] = {}
    for event in announced_events(bootstrap, prefix):
        kind = event.WhichOneof("kind")
        if kind == "day_accrued":
            day = event.day_accrued.day
            delta = (day.amount_nok, 1 if day.rate_pending else 0)
        elif kind == "corrected":
            delta = (event.corrected.delta_nok, event.corrected.delta_pending_days)
        else:
            continue
        nok, pending = totals.get(event.episode_id, (0, 0))
        totals[event.episode_id] = (nok + delta[0], pending + delta[1])
    return totals


def dead_letter_reasons(bootstrap: str, key: bytes) -> list[str]:
    consumer = KafkaConsumer(
        DEAD_LETTER,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=4000,
    )
    reasons = [dict(r.headers)["dlq.reason"].decode() for r in consumer if r.key == key]
    consumer.close()
    return reasons


def discharge_service(
    bootstrap: str, tmp_path: Path, clock_date: str = CLOCK_DATE, **env: str
) -> ServiceProcess:
    """A discharge worker of its own (app id, data dir, port) on the test broker."""
    address = f"127.0.0.1:{free_port()}"
    return ServiceProcess(
        "discharge",
        address,
        tmp_path / "discharge.log",
        env={
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DISCHARGE_GRPC_ADDR": address,
            "OVERGANG_CLOCK_DATE": clock_date,
            "OVERGANG_DATA_DIR": str(tmp_path / "data"),
            "OVERGANG_APP_ID_SUFFIX": f"-it-{uuid.uuid4().hex[:8]}",
            **env,
        },
    )


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
