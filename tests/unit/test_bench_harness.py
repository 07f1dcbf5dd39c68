"""The benchmark and load harness compute what they say: the replay benchmark times the
CLI against json.loads of the same file, the live benchmark's marker episodes land in the
partitions they mark, the load harness's percentiles and national peak are as written."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
from kafka.partitioner.default import murmur2

from discharge.streams import ClockStreams
from overgang.codec import event_to_json, parse_event_json
from overgang.events import MUNICIPAL_KINDS, EventKind
from tooling import bench_recovery, bench_replay, load
from tooling.bench_live import marker_events


def test_the_replay_benchmark_times_the_cli_on_a_file_it_makes_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_replay, "BENCH_DIR", tmp_path)
    path = bench_replay.year_file(300, trusts=2)
    made = path.stat().st_mtime_ns
    figures = bench_replay.measure(bench_replay.year_file(300, trusts=2), runs=1)
    lines = path.read_bytes().splitlines()
    assert (path.stat().st_mtime_ns, figures.events, all(map(parse_event_json, lines))) == (
        made,
        len(lines),
        True,
    )
    assert figures.cpu_ratio > 1 and "x" in figures.lines()[2]


@pytest.mark.parametrize("partitions", [1, 3, 6])
def test_every_partition_gets_a_marker_episode_of_its_own(partitions: int) -> None:
    events = marker_events("tail", partitions, answered=True)
    hospital = [e for e in events if e.kind is EventKind.DISCHARGE_READY_NOTIFIED]
    placed = sorted((murmur2(e.episode_id.encode()) & 0x7FFFFFFF) % partitions for e in hospital)
    answers = [e for e in events if e.kind in MUNICIPAL_KINDS]
    assert (placed, len(answers)) == (list(range(partitions)), partitions)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [load.percentile(values, q) for q in (50, 99, 100)] == [50.0, 99.0, 100.0]


def test_the_national_peak_is_worked_out_from_the_issue_figures() -> None:
    # 94 000 patients x 5 events / 2 000 working hours, busiest hour 3x, busiest day 1.5x
    expected = 94_000 * 5 / 2_000 / 3600 * 4.5
    assert (round(load.NATIONAL_PEAK, 6), round(10 * load.NATIONAL_PEAK, 2)) == (
        round(expected, 6),
        2.94,
    )


def test_a_load_episode_is_four_valid_hospital_events_two_of_which_make_tasks() -> None:
    events = load.episode_events(1, "T", random.Random(1))
    tasks = [e.kind for e in events if e.kind in load.TASK_KINDS]
    assert ([parse_event_json(event_to_json(e)) for e in events], tasks) == (
        events,
        [EventKind.ADMISSION_NOTIFIED, EventKind.DISCHARGE_READY_NOTIFIED],
    )


def test_the_recovery_changelog_compacts_to_exactly_the_hot_clocks() -> None:
    """What the cleaner would keep of the bench's changelog (the last record per key,
    tombstones dropped) is the hot table: every churned episode ends in a tombstone."""
    hot = bench_recovery.hot_clocks(running=20, settled=10)
    last: dict[bytes, bytes | None] = {}
    for _partition, key, value in bench_recovery.changelog(hot, head_days=2, partitions=6):
        last[key] = value
    kept = {json.loads(k): json.loads(v) for k, v in last.items() if v is not None}
    assert kept == hot


def test_the_recovery_bench_places_a_clock_where_the_worker_does() -> None:
    worker = SimpleNamespace(settings=SimpleNamespace(topic_partitions=6))
    hot = bench_recovery.hot_clocks(running=20, settled=10)
    for partition, key, _value in bench_recovery.changelog(hot, head_days=1, partitions=6):
        assert partition == ClockStreams.partition_of(
            worker,  # type: ignore[arg-type]
            json.loads(key),
        )
