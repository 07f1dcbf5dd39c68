"""`make bench-state`: what the discharge worker's state costs as history grows (issue 10,
items 3 and 4), each figure a ratio to a baseline measured in the same run.

* Tick: a midnight tick over 5 000 running clocks, with the clocks that settled inside the
  retention beside them in the hot table and 500 000 settled clocks in the archive, against
  a tick over only the 5 000 running clocks.
* Memory: bytes per open clock in the hot table (its JSON value) and in Python.
* Restore: a late event for an archived clock, against one for a clock in the hot table.
Nothing is asserted; the numbers go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from discharge.domain.live_clock import Rules
from discharge.rules import load_profile, load_rates
from discharge.runtime import MIGRATIONS
from discharge.store import ClockArchive
from discharge.table import ClockTable
from discharge.worker import ClockWorker
from overgang.codec import encode_event
from overgang.events import OSLO, Destination, Division, EpisodeEvent, EventKind
from overgang.kafka.records import Consumed, Headers
from overgang.kafka.topics import CLOCK_TICKS, topic_for
from overgang.plausibility import Windows
from overgang.sql.engine import make_engine
from overgang.sql.migrations import migrate

TODAY = dt.date(2024, 6, 1)


def _event(episode: str, n: int, kind: EventKind, day: dt.date, **extra: Any) -> EpisodeEvent:
    at = dt.datetime.combine(day, dt.time(10), tzinfo=OSLO)
    return EpisodeEvent(f"{episode}:{n}", episode, at, "1103", Division.SOMATIC, kind, **extra)


def _history(episode: str, start: dt.date, ended: bool) -> list[EpisodeEvent]:
    notice = start + dt.timedelta(days=2)
    events = [
        _event(episode, 1, EventKind.ADMITTED, start),
        _event(episode, 2, EventKind.ADMISSION_NOTIFIED, start),
        _event(
            episode,
            3,
            EventKind.DISCHARGE_READY_NOTIFIED,
            notice,
            ready_at=dt.datetime.combine(notice, dt.time(9), tzinfo=OSLO),
        ),
    ]
    if ended:
        events.append(_event(episode, 4, EventKind.SERVICE_READY, notice + dt.timedelta(days=3)))
        events.append(
            _event(
                episode,
                5,
                EventKind.DISCHARGED,
                notice + dt.timedelta(days=3),
                destination=Destination.HOME,
            )
        )
    return events


def _record(event: EpisodeEvent) -> Consumed:
    return Consumed(topic_for(event), 0, 0, event.episode_id.encode(), encode_event(event), [])


class Bench:
    def __init__(self, archive: ClockArchive | None) -> None:
        self.table: dict[str, Any] = {}
        self.today = TODAY

        async def announce(_episode: str, _values: Sequence[bytes]) -> None:
            return None

        async def dead_letter(_k: bytes | None, _v: bytes | None, _h: Headers) -> None:
            raise AssertionError("the bench's records are all valid")

        self.worker = ClockWorker(
            ClockTable(self.table),
            Rules(load_rates(), load_profile()),
            lambda: dt.datetime.combine(self.today, dt.time(12), tzinfo=OSLO),
            announce,
            dead_letter,
            archive=archive,
            retention_days=30,
            # The bench's clocks reach back a year: no plausibility window in the way.
            windows=Windows(
                dt.timedelta(days=10_000), dt.timedelta(days=10_000), dt.timedelta(days=7)
            ),
        )

    def feed(self, events: list[EpisodeEvent]) -> None:
        async def run() -> None:
            for event in events:
                await self.worker.handle(_record(event))

        asyncio.run(run())

    def tick_seconds(self, day: dt.date) -> float:
        self.today = day
        tick = Consumed(CLOCK_TICKS, 0, 0, None, json.dumps({"date": day.isoformat()}).encode())
        start = time.perf_counter()
        asyncio.run(self.worker.handle(tick))
        return time.perf_counter() - start


def _running(count: int) -> list[EpisodeEvent]:
    return [
        e
        for i in range(count)
        for e in _history(f"80001:R{i}", TODAY - dt.timedelta(days=10 + i % 20), ended=False)
    ]


def _settled_recently(count: int) -> list[EpisodeEvent]:
    return [
        e
        for i in range(count)
        for e in _history(f"80001:S{i}", TODAY - dt.timedelta(days=8 + i % 20), ended=True)
    ]


def _fill_archive(archive: ClockArchive, count: int, template: Bench) -> None:
    """`count` settled clocks in the archive (bulk: one settled entry's JSON, many ids)."""
    template.feed(_history("80001:A0", TODAY - dt.timedelta(days=400), ended=True))
    entry = template.worker.store.get("80001:A0")
    assert entry is not None
    for start in range(0, count, 10_000):
        batch = range(start, min(count, start + 10_000))
        archive.put_many([dataclasses_replace(entry, f"80001:A{i}") for i in batch])


def dataclasses_replace(entry: Any, episode_id: str) -> Any:
    return dataclasses.replace(entry, episode_id=episode_id)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-state")
    parser.add_argument("--running", type=int, default=5_000)
    parser.add_argument("--settled-recently", type=int, default=8_000)
    parser.add_argument("--archived", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'discharge.db'}")
        migrate(engine, MIGRATIONS)
        archive = ClockArchive(engine, lambda: dt.datetime.now(dt.UTC))

        baseline = Bench(None)
        baseline.feed(_running(args.running))
        full = Bench(archive)
        full.feed(_running(args.running) + _settled_recently(args.settled_recently))
        started = time.perf_counter()
        _fill_archive(archive, args.archived, Bench(None))
        fill_s = time.perf_counter() - started

        day = TODAY + dt.timedelta(days=1)
        base_times, full_times = [], []
        for run in range(args.runs):
            base_times.append(baseline.tick_seconds(day + dt.timedelta(days=run)))
            full_times.append(full.tick_seconds(day + dt.timedelta(days=run)))
        base, fullm = statistics.median(base_times), statistics.median(full_times)
        print(f"machine: {sys.platform}, python {sys.version.split()[0]}")
        print(
            f"tick: {args.running} running alone {base * 1000:.0f} ms; with "
            f"{args.settled_recently} settled in the hot table and {archive.count()} archived "
            f"{fullm * 1000:.0f} ms; ratio {fullm / base:.2f}x (median of {args.runs})"
        )
        print(f"  (archive of {args.archived} filled in {fill_s:.0f} s, not part of a tick)")

        open_values = [v for v in baseline.table.values() if v.get("quiet_since") is None]
        json_bytes = statistics.mean(len(json.dumps(v)) for v in open_values)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        probe = Bench(None)
        probe.feed(_running(1_000))
        per_clock = (tracemalloc.get_traced_memory()[0] - before) / 1_000
        tracemalloc.stop()
        print(
            f"memory per open clock: {json_bytes:.0f} bytes of table JSON, "
            f"{per_clock / 1024:.1f} KiB of Python objects (memory:// store)"
        )

        late = [
            _event(
                "80001:A7",
                9,
                EventKind.MUNICIPALITY_ANSWERED,
                TODAY - dt.timedelta(days=397),
                can_receive=True,
            )
        ]
        hot_late = [
            _event(
                "80001:S7",
                9,
                EventKind.MUNICIPALITY_ANSWERED,
                TODAY - dt.timedelta(days=5),
                can_receive=True,
            )
        ]
        t0 = time.perf_counter()
        full.feed(late)
        restore = time.perf_counter() - t0
        t0 = time.perf_counter()
        full.feed(hot_late)
        hot = time.perf_counter() - t0
        print(
            f"late event: archived clock {restore * 1000:.1f} ms (restore + correction), "
            f"hot clock {hot * 1000:.1f} ms; ratio {restore / hot:.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
