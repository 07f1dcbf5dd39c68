"""`make bench-live`: events per second through the discharge worker on real Kafka (issue
10, item 2), as a ratio to a bare aiokafka consumer reading the same topics in the same run.

A broker of its own (port 19292, data under .data/bench/kafka; KAFKA_PORT and
OVERGANG_KAFKA_DATA override), wiped first, so every run has a fresh topic set. The input
is a simulated month (hospital and municipal topics, keyed by episode id, protobuf), with a
marker episode at the head and the tail of every partition whose events the clock must
announce. Then `python -m discharge` starts; it is done when its consumer group has
committed every input record and the liability topic has been quiet for a while. Its
rate: input events over the span from its first to its last liability record (start-up,
recovery and group join are not counted). The baseline: a plain aiokafka consumer that
iterates the same two topics from the start, nothing else. CPU seconds per event of
both are printed too: on a shared machine they move less than wall time. `--workers N`
starts N workers in one group instead (their CPU summed); the references show where the
time goes (a bare consumer that decodes each event, Faust agents: `tooling.bench_faust`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from overgang.codec import decode_event
from overgang.config import load_settings
from overgang.events import OSLO, Division, EpisodeEvent, EventKind
from overgang.kafka.event_producer import produce_events
from overgang.kafka.records import content_type, headers_of
from overgang.kafka.topics import (
    HOSPITAL_EVENTS,
    LIABILITY_EVENTS,
    MUNICIPAL_EVENTS,
    default_partition,
    ensure_topics,
)
from tooling import stack
from tooling.bench_env import broker_env, own_broker, service_env
from tooling.launcher import ServiceProcess
from tooling.simulation import all_events, simulate_month

BENCH_DIR = stack.CHECKOUT / ".data" / "bench"
CLOCK_DATE = "2024-04-01"  # the simulated month is March 2024
INPUT_TOPICS = (HOSPITAL_EVENTS, MUNICIPAL_EVENTS)
MARKER_HER_ID = "90000"
GROUP_SETTLE_SECONDS = 15.0


def _marker_id(label: str, partition: int, partitions: int) -> str:
    """An episode id that the default (murmur2) partitioner puts in `partition`."""
    for n in range(10_000):
        episode_id = f"{MARKER_HER_ID}:{label}-p{partition}-{n}"
        if default_partition(episode_id, partitions) == partition:
            return episode_id
    raise AssertionError("no marker id found")  # pragma: no cover


def marker_events(label: str, partitions: int, answered: bool) -> list[EpisodeEvent]:
    """Per partition, an episode the clock announces at once: a period opened a month
    before the clock date (days accrue), and with `answered` a "can receive" on its
    first day on the municipal topic (the accrued days are reversed)."""
    events: list[EpisodeEvent] = []
    day = dt.datetime(2024, 3, 1, 10, tzinfo=OSLO)
    for partition in range(partitions):
        episode = _marker_id(label, partition, partitions)
        base = EpisodeEvent("", episode, day, "1103", Division.SOMATIC, EventKind.ADMITTED)
        steps: list[tuple[EventKind, dict[str, Any]]] = [
            (EventKind.ADMISSION_NOTIFIED, {}),
            (EventKind.DISCHARGE_READY_NOTIFIED, {"ready_at": day}),
        ]
        if answered:
            steps.append((EventKind.MUNICIPALITY_ANSWERED, {"can_receive": True}))
        events.extend(
            dataclasses.replace(
                base,
                event_id=f"{episode}:{n}",
                occurred_at=day + dt.timedelta(hours=n),
                kind=kind,
                **extra,
            )
            for n, (kind, extra) in enumerate(steps)
        )
    return events


def _end_offsets(bootstrap: str, topics: tuple[str, ...]) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t)]
        return dict(consumer.end_offsets(parts))
    finally:
        consumer.close()


def _committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
        return {tp: meta.offset for tp, meta in offsets.items()}
    finally:
        admin.close()


def wait_done(bootstrap: str, group: str, quiet: float, timeout: float) -> None:
    """Until the group has committed every input record and the liability topic has
    not grown for `quiet` seconds."""
    ends = _end_offsets(bootstrap, INPUT_TOPICS)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        committed = _committed(bootstrap, group)
        if all(committed.get(tp, -1) >= end for tp, end in ends.items()):
            break
        time.sleep(1)
    else:
        raise TimeoutError(f"the worker did not commit every input record in {timeout:.0f} s")
    last = _end_offsets(bootstrap, (LIABILITY_EVENTS,))
    while True:
        time.sleep(quiet)
        now = _end_offsets(bootstrap, (LIABILITY_EVENTS,))
        if now == last:
            return
        last = now


def liability_span(bootstrap: str) -> tuple[int, float]:
    """(records, seconds from the first to the last record's timestamp)."""
    consumer = KafkaConsumer(
        LIABILITY_EVENTS,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    stamps = [record.timestamp for record in consumer]
    consumer.close()
    return len(stamps), (max(stamps) - min(stamps)) / 1000


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bare_consumer(
    bootstrap: str, expected: int, each: Callable[[Any], object] | None = None
) -> tuple[float, float]:
    """(wall, CPU) seconds for a plain aiokafka consumer to iterate `expected` records of
    the input topics, from the first record on, calling `each` on every record if given."""
    consumer = AIOKafkaConsumer(
        *INPUT_TOPICS, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        count, wall, cpu = 0, 0.0, 0.0
        async for record in consumer:
            if count == 0:
                wall, cpu = time.perf_counter(), time.process_time()
            if each is not None:
                each(record)
            count += 1
            if count == expected:
                break
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await consumer.stop()


def decode(record: Any) -> EpisodeEvent:
    """What any consumer of the events does first: decode and validate the payload."""
    return decode_event(record.value, content_type(headers_of(record.headers)))


def faust_reference(bootstrap: str, events: int, mode: str, timeout: float) -> tuple[float, float]:
    """(wall, CPU) seconds of a reference Faust agent (`tooling.bench_faust`) over the input."""
    out = subprocess.run(
        [sys.executable, "-m", "tooling.bench_faust", bootstrap, str(events), mode],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            result = json.loads(line)
            return float(result["wall"]), float(result["cpu"])
    raise RuntimeError(f"bench_faust {mode} gave no result: {out.stderr[-2000:]}")


@dataclass(frozen=True)
class LiveFigures:
    events: int
    liability_records: int
    # (wall, CPU) seconds over the input, by who read it; the first is the baseline
    runs: dict[str, tuple[float, float]]

    def lines(self) -> list[str]:
        n = self.events
        (base_wall, base_cpu), *_ = self.runs.values()
        lines = [
            f"live throughput on real Kafka: {n} input events "
            f"({self.liability_records} liability records announced)",
            f"  {'reader':<40}{'events/s':>10}{'us cpu/event':>14}{'rate':>9}{'by cpu':>9}",
        ]
        for name, (wall, cpu) in self.runs.items():
            lines.append(
                f"  {name:<40}{n / wall:>10.0f}{cpu / n * 1e6:>14.1f}"
                f"{base_wall / wall * 100:>8.1f}%{base_cpu / cpu * 100:>8.1f}%"
            )
        return lines


def start_workers(env: dict[str, str], data_dir: Path, count: int) -> list[ServiceProcess]:
    """`count` discharge workers in one consumer group (one app id), each with its own
    data directory and loopback ports (`service_env`'s for the first)."""
    shutil.rmtree(data_dir, ignore_errors=True)  # the broker is fresh: so is the archive
    workers = []
    for n in range(count):
        ports = _fresh_ports() if n else {}
        own = {**env, **ports, "OVERGANG_DATA_DIR": str(data_dir / f"worker-{n}")}
        address = own["DISCHARGE_GRPC_ADDR"]
        workers.append(ServiceProcess("discharge", address, data_dir / f"log-{n}", env=own))
    for worker in workers:
        worker.start()
    return workers


def _fresh_ports() -> dict[str, str]:
    return {k: v for k, v in service_env("", Path(), "").items() if k.endswith("_ADDR")}


def run(
    episodes: int,
    partitions: int,
    quiet: float,
    timeout: float,
    references: bool = True,
    workers: int = 1,
) -> LiveFigures:
    os.environ["OVERGANG_TOPIC_PARTITIONS"] = str(partitions)
    data_dir = BENCH_DIR / "live"
    with own_broker(broker_env(19292, BENCH_DIR / "kafka")) as bootstrap:
        settings = dataclasses.replace(load_settings(), kafka_bootstrap=bootstrap)
        ensure_topics(settings)
        month = sorted(
            all_events(simulate_month(2024, 3, episodes, seed=10)), key=EpisodeEvent.sort_key
        )
        batches = (marker_events("head", partitions, False), month)
        tail = marker_events("tail", partitions, True)
        env = service_env(bootstrap, data_dir, CLOCK_DATE)
        group = start_workers(env, data_dir, workers)
        try:
            for worker in group:
                worker.wait_serving(timeout)
            if workers > 1:
                time.sleep(GROUP_SETTLE_SECONDS)  # the joins' rebalances, on empty topics
            # Started and recovered on empty topics: only the processing is counted.
            idle_cpu = sum(process_cpu(w.pid) for w in group)
            sent = sum(produce_events(bootstrap, batch, settings) for batch in (*batches, tail))
            wait_done(
                bootstrap, "overgang-discharge" + env["OVERGANG_APP_ID_SUFFIX"], quiet, timeout
            )
            worker_cpu = sum(process_cpu(w.pid) for w in group) - idle_cpu
        finally:
            for worker in group:
                worker.stop()
        records, span = liability_span(bootstrap)
        runs = {"baseline: bare aiokafka consumer": asyncio.run(bare_consumer(bootstrap, sent))}
        name = "discharge worker" if workers == 1 else f"{workers} discharge workers"
        runs[f"{name} (python -m discharge)"] = (span, worker_cpu)
        if references:
            runs["reference: bare aiokafka + decode"] = asyncio.run(
                bare_consumer(bootstrap, sent, decode)
            )
            for mode, name in (
                ("empty", "Faust agent, empty"),
                ("acked", "Faust agent, acked send"),
            ):
                runs[f"reference: {name}"] = faust_reference(bootstrap, sent, mode, timeout)
    return LiveFigures(sent, records, runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooling.bench_live", description=__doc__)
    parser.add_argument("--episodes", type=int, default=4000, help="simulated episodes")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--quiet", type=float, default=3.0, help="seconds without liability records"
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--no-references", action="store_true", help="skip the reference Faust agents"
    )
    parser.add_argument("--workers", type=int, default=1, help="discharge workers, one group")
    args = parser.parse_args(argv)
    figures = run(
        args.episodes,
        args.partitions,
        args.quiet,
        args.timeout,
        not args.no_references,
        args.workers,
    )
    for line in figures.lines():
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
