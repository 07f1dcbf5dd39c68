"""`make bench`: throughput of the clock's hot paths, as ratios against a baseline
measured in the same run (plain json.loads of the same lines), so numbers compare across
machines. Prints one line per path; nothing here is asserted."""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
from collections.abc import Callable

from discharge.domain.live_clock import ClockEntry, Rules, apply_event, apply_tick
from discharge.rules import load_profile, load_rates
from discharge.table import entry_from_json, entry_to_json
from overgang.codec import event_to_json, parse_event_json
from tooling.replay import replay
from tooling.simulation import all_events, simulate_month

AS_OF = dt.date(2024, 4, 1)


def best_of(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times) if runs < 5 else statistics.median(times)


def main() -> None:
    rules = Rules(load_rates(), load_profile())
    episodes = simulate_month(2024, 3, 1000, seed=11)
    events = list(all_events(episodes))
    lines = [event_to_json(e) for e in events]
    n = len(events)

    def baseline() -> None:
        for line in lines:
            json.loads(line)

    def parse() -> None:
        for line in lines:
            parse_event_json(line)

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

    base = best_of(7, baseline)
    print(f"overgang bench: {len(episodes)} episodes, {n} events (simulated March 2024)")
    print(f"{'path':<42}{'per item':>12}{'x baseline':>12}")
    print(f"{'baseline: json.loads per event':<42}{base / n * 1e6:>10.1f}us{1.0:>12.1f}")
    for name, work, items in [
        ("parse + validate per event (codec)", parse, n),
        ("replay: statement per event", replay_all, n),
        ("live: apply one event incl. table JSON", live_events, n),
        ("live: midnight tick per episode", midnight_tick, len(entries)),
    ]:
        spent = best_of(5, work)
        per_item = spent / items
        print(f"{name:<42}{per_item * 1e6:>10.1f}us{per_item / (base / n):>12.1f}")


if __name__ == "__main__":
    main()
