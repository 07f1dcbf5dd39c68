"""`make bench`: throughput of the clock's hot paths and of `overgang replay` through the
CLI, as ratios against a baseline measured in the same run (plain `json.loads` of the
same lines), so numbers compare across machines. Every path is timed in CPU seconds,
several times, each time right after the baseline; the ratio is taken per repetition and
the median printed, so other load on a shared machine moves both sides alike. Nothing
here is asserted. Not part of `make test`.

The other figures of issue 10 have targets of their own: `make bench-national` (a
national year through the CLI), `make bench-live` (the worker on real Kafka), `make load`
(gRPC event to task under load), `make bench-state` (the worker's state).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
from collections.abc import Callable

from discharge.domain.live_clock import ClockEntry, Rules, apply_event, apply_tick
from discharge.entry_json import entry_from_json, entry_to_json
from discharge.rules import load_profile, load_rates
from overgang.codec import event_to_json, parse_event_json, parse_event_json_reference
from tooling import bench_replay
from tooling.bench_env import machine
from tooling.replay import replay
from tooling.simulation import all_events, simulate_month

AS_OF = dt.date(2024, 4, 1)
YEAR_EVENTS = 129_464  # the simulated year of issue 10 (24 000 episodes)


def cpu_seconds(work: Callable[[], object]) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def versus(
    work: Callable[[], object], items: int, baseline: Callable[[], object], n: int, runs: int
) -> tuple[float, float]:
    """(seconds per item, ratio to the baseline's seconds per line), medians over runs."""
    per_item, ratios = [], []
    for _ in range(runs):
        base = cpu_seconds(baseline) / n
        spent = cpu_seconds(work) / items
        per_item.append(spent)
        ratios.append(spent / base)
    return statistics.median(per_item), statistics.median(ratios)


def main() -> None:
    rules = Rules(load_rates(), load_profile())
    episodes = simulate_month(2024, 3, 1000, seed=11)
    events = list(all_events(episodes))
    lines = [event_to_json(e).encode() for e in events]
    n = len(events)

    def baseline() -> None:
        for line in lines:
            json.loads(line)

    def parse() -> None:
        for line in lines:
            parse_event_json(line)

    def parse_reference() -> None:
        for line in lines:
            parse_event_json_reference(line)

    def replay_all() -> None:
        replay(events, AS_OF, rules.rates, rules.profile)

    def live_events() -> None:
        # The streaming path: per event, load the table entry, recompute, store it.
        table: dict[str, dict[str, object]] = {}
        for event in events:
            stored = table.get(event.episode_id)
            entry = entry_from_json(stored) if stored else ClockEntry(event.episode_id, 0, AS_OF)
            table[event.episode_id] = entry_to_json(apply_event(entry, event, rules).entry)

    entries = [ClockEntry(e.episode_id, 0, dt.date(2024, 3, 25)) for e in episodes]
    for i, episode in enumerate(episodes):
        for event in [*episode.hospital, *episode.municipal]:
            entries[i] = apply_event(entries[i], event, rules).entry

    def midnight_tick() -> None:
        for entry in entries:
            apply_tick(entry, AS_OF, rules)

    print(machine())
    print(f"overgang bench: {len(episodes)} episodes, {n} events (simulated March 2024)")
    print(f"{'path':<46}{'per item':>12}{'x baseline':>12}")
    base = statistics.median(cpu_seconds(baseline) for _ in range(7)) / n
    print(f"{'baseline: json.loads per event':<46}{base * 1e6:>10.1f}us{1.0:>12.1f}")
    for name, work, items in [
        ("parse + validate per event (codec)", parse, n),
        ("  the same through protobuf (reference path)", parse_reference, n),
        ("replay: statement per event", replay_all, n),
        ("live: apply one event incl. table JSON", live_events, n),
        ("live: midnight tick per episode", midnight_tick, len(entries)),
    ]:
        per_item, ratio = versus(work, items, baseline, n, runs=5)
        print(f"{name:<46}{per_item * 1e6:>10.1f}us{ratio:>12.1f}")
    print()
    for line in bench_replay.measure(bench_replay.year_file(YEAR_EVENTS), runs=3).lines():
        print(line, flush=True)


if __name__ == "__main__":
    main()
