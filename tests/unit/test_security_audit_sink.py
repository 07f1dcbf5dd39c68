"""The audit trail on Kafka (issue 8 item 9): `KafkaAuditSink` queues without blocking,
keeps records while Kafka is away, drops the oldest when full; `overgang audit` filters
by time, identity, episode and outcome (against a real broker:
tests/integration/test_security_audit_kafka.py)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from typing import Any

import pytest

from overgang.audit import AUDIT_TOPIC, OK, REFUSED, AuditRecord
from overgang.config import Settings
from overgang.kafka.audit_sink import KafkaAuditSink
from tooling.audit_cli import AuditFilter, add_audit_command, format_line

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


def entry(n: int, **changes: Any) -> AuditRecord:
    fields: dict[str, Any] = {
        "at": (T0 + dt.timedelta(minutes=n)).isoformat(),
        "service": "pathway",
        "rpc": "GetPathway",
        "identity": "kari",
        "role": "coordinator:1103/HOME_CARE",
        "peer": "ipv4:10.0.0.7:51234",
        "outcome": OK,
        "episode_id": f"81234:E{n}",
    }
    return AuditRecord(**{**fields, **changes})


class FakeProducer:
    def __init__(self, fail: int = 0) -> None:
        self.fail = fail  # the first `fail` sends raise, as with Kafka away
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("broker away")
        self.sent.append((topic, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def test_records_are_sent_as_json_keyed_by_identity() -> None:
    producer = FakeProducer()

    async def main() -> None:
        sink = KafkaAuditSink(Settings(), producer=producer)
        await sink.start()
        sink.record(entry(1))
        await sink.stop()

    asyncio.run(main())
    assert producer.sent == [(AUDIT_TOPIC, b"kari", entry(1).to_json())]


def test_records_wait_while_kafka_is_away_and_go_in_order() -> None:
    producer = FakeProducer(fail=2)

    async def main() -> None:
        sink = KafkaAuditSink(Settings(), producer=producer, retry_seconds=0.01)
        await sink.start()
        for n in range(3):
            sink.record(entry(n))
        await asyncio.sleep(0.3)
        await sink.stop()

    asyncio.run(main())
    assert [AuditRecord.from_json(v).episode_id for _, _, v in producer.sent] == [
        "81234:E0",
        "81234:E1",
        "81234:E2",
    ]


def test_a_full_queue_drops_the_oldest_and_never_blocks() -> None:
    sink = KafkaAuditSink(Settings(), max_queued=2, producer=FakeProducer())
    for n in range(5):
        sink.record(entry(n))  # not started: nothing is sent, nothing waits
    assert (sink.queued, sink.dropped) == (2, 3)


def test_the_json_form_reads_back_and_rejects_other_values() -> None:
    record = entry(1, episode_ids=("81234:A", "81234:B"), query={"stage": "ADMITTED"})
    assert AuditRecord.from_json(record.to_json()) == record
    for value in (b"[]", b"{}", b"\xff"):
        with pytest.raises(ValueError):
            AuditRecord.from_json(value)


# ------------------------------------------------------------------------ overgang audit
RECORDS = [
    entry(1),
    entry(2, identity="ola", outcome=REFUSED, detail="read this pathway"),
    entry(3, rpc="ListPathways", episode_id="", episode_ids=("81234:E1", "81234:E9")),
]


@pytest.mark.parametrize(
    ("wanted", "rpcs"),
    [
        (AuditFilter(), ["GetPathway", "GetPathway", "ListPathways"]),
        (AuditFilter(identity="ola"), ["GetPathway"]),
        (AuditFilter(episode="81234:E1"), ["GetPathway", "ListPathways"]),
        (AuditFilter(since=T0 + dt.timedelta(minutes=2)), ["GetPathway", "ListPathways"]),
        (AuditFilter(outcome=REFUSED), ["GetPathway"]),
    ],
)
def test_the_filters(wanted: AuditFilter, rpcs: list[str]) -> None:
    assert [r.rpc for r in RECORDS if wanted.matches(r)] == rpcs


def test_a_line_says_when_what_who_from_where_and_about_what() -> None:
    assert format_line(RECORDS[1]) == (
        "2026-12-01T08:02:00+00:00  refused  ola [coordinator:1103/HOME_CARE]  "
        "ipv4:10.0.0.7:51234  pathway.GetPathway  81234:E2  read this pathway"
    )


def test_the_command_parses_its_options() -> None:
    parser = argparse.ArgumentParser()
    add_audit_command(parser.add_subparsers())
    args = parser.parse_args(["audit", "--since", "2026-12-01", "--episode", "81234:E1", "--json"])
    assert (args.since, args.episode, args.json, args.func.__name__) == (
        T0.replace(hour=0),
        "81234:E1",
        True,
        "cmd_audit",
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["audit", "--since", "yesterday"])
