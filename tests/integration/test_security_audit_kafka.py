"""The audit trail through a real broker (issue 8 item 9): what `KafkaAuditSink` writes to
overgang.audit.v1, `overgang audit` reads back and filters."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import uuid

import pytest

from overgang.audit import AUDIT_TOPIC, AuditRecord
from overgang.config import Settings
from overgang.kafka.audit_sink import KafkaAuditSink, read_audit
from overgang.kafka.topics import ensure_topics
from tooling.audit_cli import AuditFilter, write_records

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]


def entry(n: int, identity: str, at: dt.datetime) -> AuditRecord:
    return AuditRecord(
        at=at.isoformat(),
        service="pathway",
        rpc="GetPathway",
        identity=identity,
        role="coordinator:1103/HOME_CARE",
        peer="ipv4:10.0.0.7:51234",
        outcome="ok",
        episode_id=f"81234:E{n}",
    )


def test_what_the_sink_writes_overgang_audit_reads_back(kafka_bootstrap: str) -> None:
    settings = Settings(kafka_bootstrap=kafka_bootstrap)
    ensure_topics(settings, [AUDIT_TOPIC])
    mine = f"audit-test-{uuid.uuid4().hex[:8]}"
    now = dt.datetime.now(dt.UTC)

    async def main() -> None:
        sink = KafkaAuditSink(settings)
        await sink.start()
        for n in range(3):
            sink.record(entry(n, mine, now + dt.timedelta(seconds=n)))
        await sink.stop()

    asyncio.run(main())
    since = now - dt.timedelta(minutes=1)
    out = io.StringIO()
    records = list(read_audit(settings, since=since))
    wanted = AuditFilter(since=since, identity=mine, episode="81234:E1")
    count = write_records(records, wanted, out, as_json=False)
    assert (count, out.getvalue().split("  ")[2]) == (1, f"{mine} [coordinator:1103/HOME_CARE]")
