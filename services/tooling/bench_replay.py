"""`overgang replay` end to end through the CLI (issue 10, item 1), as a ratio to a plain
`json.loads` of the same lines measured in the same run.

The events file is a simulated year (`tooling.simulation`, several health trusts), made
once into `.data/bench/` and reused. Each run measures the baseline and then the CLI as a
subprocess (its CPU time from the kernel's accounting, and its wall time); the ratio is
taken per run and the median reported, so that other load on a shared machine moves
both sides of a ratio alike. `make bench-national` runs it on a national year
(1 000 000 events); `make bench` on the issue's 24 000-episode year.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from overgang.codec import event_to_json
from overgang.events import EpisodeEvent
from tooling.simulation import all_events, simulate_month
from tooling.stack import CHECKOUT

BENCH_DIR = CHECKOUT / ".data" / "bench"
AS_OF = "2025-02-01"  # the year 2024 is over; January 2025 has no rate (rate-pending)
EVENTS_PER_EPISODE = 5.39  # what the simulation averages
NATIONAL_EVENTS = 1_000_000


@dataclass(frozen=True)
class Run:
    baseline_cpu: float  # seconds: json.loads of every line, in this process
    baseline_wall: float
    cli_cpu: float  # seconds: the `overgang replay` subprocess, user + system
    cli_wall: float


@dataclass(frozen=True)
class ReplayFigures:
    path: Path
    events: int
    runs: tuple[Run, ...]

    def _median(self, values: list[float]) -> float:
        return statistics.median(values)

    @property
    def cpu_ratio(self) -> float:
        return self._median([r.cli_cpu / r.baseline_cpu for r in self.runs])

    @property
    def wall_ratio(self) -> float:
        return self._median([r.cli_wall / r.baseline_wall for r in self.runs])

    @property
    def cli_cpu(self) -> float:
        return self._median([r.cli_cpu for r in self.runs])

    @property
    def cli_wall(self) -> float:
        return self._median([r.cli_wall for r in self.runs])

    @property
    def baseline_cpu(self) -> float:
        return self._median([r.baseline_cpu for r in self.runs])

    def lines(self) -> list[str]:
        n = self.events
        per_event = self.cli_cpu / n * 1e6
        return [
            f"replay via the CLI: {n} events in {self.path.name} ({len(self.runs)} runs, median)",
            f"  baseline json.loads per line   {self.baseline_cpu / n * 1e6:8.2f} us cpu   1.0x",
            f"  overgang replay, end to end    {per_event:8.2f} us cpu "
            f"{self.cpu_ratio:6.1f}x (wall {self.wall_ratio:.1f}x)",
            f"  overgang replay, total         {self.cli_cpu:8.2f} s cpu, "
            f"{self.cli_wall:.2f} s wall",
        ]


def _episodes_per_trust(events: int, trusts: int) -> int:
    return max(1, math.ceil(events / EVENTS_PER_EPISODE / 12 / trusts))


def year_file(events: int, trusts: int = 20, year: int = 2024) -> Path:
    """A simulated year of about `events` events (made once, then reused): each month's
    episodes of `trusts` health trusts, the month's lines in event-time order."""
    path = BENCH_DIR / f"year-{year}-{events}-{trusts}.jsonl"
    if path.exists():
        return path
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    per_trust = _episodes_per_trust(events, trusts)
    with tempfile.NamedTemporaryFile("w", dir=BENCH_DIR, delete=False, suffix=".tmp") as out:
        for month in range(1, 13):
            month_events: list[EpisodeEvent] = []
            for trust in range(trusts):
                her_id = str(80001 + trust)
                episodes = simulate_month(
                    year, month, per_trust, seed=month * 1000 + trust, her_id=her_id
                )
                month_events.extend(all_events(episodes))
            month_events.sort(key=EpisodeEvent.sort_key)
            out.writelines(event_to_json(e) + "\n" for e in month_events)
    os.chmod(out.name, 0o644)
    os.replace(out.name, path)
    return path


def _baseline(lines: list[bytes]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    for line in lines:
        json.loads(line)
    return time.process_time() - cpu, time.perf_counter() - wall


def _cli(path: Path) -> tuple[float, float]:
    """CPU (user + system) and wall seconds of `overgang replay FILE` as a user runs it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        code = subprocess.call(
            [sys.executable, "-m", "tooling.cli", "replay", str(path), "--as-of", AS_OF],
            stdout=out,
            stderr=err,
        )
        wall = time.perf_counter() - wall
        if code not in (0, 1):
            err.seek(0)
            raise RuntimeError(f"overgang replay exited {code}: {err.read().decode()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def measure(path: Path, runs: int = 3) -> ReplayFigures:
    lines = path.read_bytes().splitlines()
    results = []
    for _ in range(runs):
        baseline_cpu, baseline_wall = _baseline(lines)
        cli_cpu, cli_wall = _cli(path)
        results.append(Run(baseline_cpu, baseline_wall, cli_cpu, cli_wall))
    return ReplayFigures(path, len(lines), tuple(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooling.bench_replay", description=__doc__)
    parser.add_argument("--events", type=int, default=NATIONAL_EVENTS)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    path = year_file(args.events)
    for line in measure(path, args.runs).lines():
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
