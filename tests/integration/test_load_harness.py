"""The load harness (`make load`) against the real stack, briefly: every hospital event it
sends over gRPC is accepted, every one that makes a task is seen on the health office's
StreamTasks stream, and the report gives the achieved rate and the percentiles."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tooling import load

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.timeout(300)]


def test_a_short_load_run_sees_a_task_for_every_notice(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings, processes = load.start_stack(kafka_bootstrap, tmp_path)
    try:
        measured = asyncio.run(
            load.drive(settings, rate=8.0, seconds=3.0, episodes=6, gap=0.3, drain=30.0)
        )
    finally:
        for process in reversed(processes):
            process.stop()
    report = load.report(measured, 8.0)
    assert (measured.rejected, len(measured.to_task()), measured.sent) == (
        0,
        len(measured.sent_at),
        2 * len(measured.sent_at),
    )
    assert (
        report[-1].startswith("  target p99 event -> task < 500 ms")
        and "events/s achieved" in report[1]
    )
