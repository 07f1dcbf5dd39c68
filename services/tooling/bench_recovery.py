"""`make bench-recovery`: a discharge worker's cold start on a changelog like the one five
years of national history leave (issue 10, item 4), against a bare kafka-python read of
the same changelog and a start on an empty one, in the same run.

What five years leave in the clock table's changelog is not five years of writes. Clocks
settled for `OVERGANG_CLOCK_RETENTION_DAYS` move to the SQL archive and leave the table
with a tombstone, and the changelog is a compacted topic: Kafka's cleaner keeps the last
record per key and drops tombstones after `delete.retention.ms` (a day). What is left:

* the hot clocks, once each: running ones and those settled inside the retention
  (nationally ~5 000 + ~8 000, their real table JSON, built by the worker itself);
* as much again in records the cleaner has not reached yet (it cleans a log when half of
  it is dirty: at worst one stale copy per live key);
* the active segment, never cleaned: `--head-days` of writes (default 7, the segment's
  roll time): every running clock rewritten by the midnight tick each day, a day's new
  episodes (94 000 a year) written at each of their events, and a day's archive
  tombstones.

The worker is `python -m discharge` on a broker of its own (port 19692, data under
.data/bench/kafka-recovery, wiped first; KAFKA_PORT and OVERGANG_KAFKA_DATA override). It
counts as recovered when it answers `GetEpisode` for a hot clock of every partition from
its own table; the running clocks it then lists are compared with those written. Nothing
is asserted; the figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from discharge.streams import APP_ID
from overgang.config import Settings, load_settings
from overgang.kafka.topics import default_partition, ensure_topics
from overgang.v1 import liability_pb2
from tooling import stack
from tooling.bench_env import broker_env, machine, own_broker, service_env
from tooling.bench_state import TODAY, Bench, _running, _settled_recently
from tooling.clients import Clients
from tooling.launcher import ServiceProcess

BENCH_DIR = stack.CHECKOUT / ".data" / "bench"
NEW_EPISODES_A_DAY = 94_000 // 365
EVENTS_PER_EPISODE = 5

Record = tuple[int, bytes, bytes | None]  # partition, key, value (None: a tombstone)


def hot_clocks(running: int, settled: int) -> dict[str, dict[str, Any]]:
    """The table JSON of `running` running clocks and `settled` settled ones, as the
    worker writes it (bench_state's worker over a dict)."""
    bench = Bench(None)
    bench.feed(_running(running) + _settled_recently(settled))
    return {key: json.loads(json.dumps(value)) for key, value in bench.table.items()}


def changelog(hot: dict[str, dict[str, Any]], head_days: int, partitions: int) -> Iterator[Record]:
    """The records of the changelog, oldest first (see the module's docstring)."""

    def record(key: str, value: dict[str, Any] | None) -> Record:
        data = None if value is None else json.dumps(value).encode()
        return default_partition(key, partitions), json.dumps(key).encode(), data

    running = [k for k, v in hot.items() if v.get("quiet_since") is None]
    settled_value = next(v for v in hot.values() if v.get("quiet_since") is not None)
    for key, value in hot.items():  # the stale copy the cleaner has not reached
        yield record(key, value)
    for key, value in hot.items():  # the cleaned part: the last record per key
        yield record(key, value)
    for day in range(head_days):  # the active segment
        for n in range(NEW_EPISODES_A_DAY):
            key = f"80002:D{day}-{n}"  # came and went inside the head
            for _ in range(EVENTS_PER_EPISODE):
                yield record(key, settled_value)
            yield record(key, None)
        for key in running:
            yield record(key, hot[key])


def produce(bootstrap: str, topic: str, records: Iterator[Record]) -> tuple[int, int]:
    """Writes the records; returns (count, bytes of values)."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=1 << 20
    )
    count = size = 0
    try:
        for partition, key, value in records:
            producer.send(topic, key=key, value=value, partition=partition)
            count += 1
            size += len(value or b"")
        producer.flush(timeout=300)
    finally:
        producer.close()
    return count, size


def create_changelog(bootstrap: str, topic: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            [NewTopic(topic, partitions, 1, topic_configs={"cleanup.policy": "compact"})]
        )
    finally:
        admin.close()


def bare_read(bootstrap: str, topic: str, partitions: int) -> float:
    """Seconds a plain consumer takes to read the topic from start to end."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    try:
        started = time.perf_counter()
        consumer.assign(tps)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(tps)
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            consumer.poll(timeout_ms=500, max_records=10_000)
        return time.perf_counter() - started
    finally:
        consumer.close()


def served_from_table(clients: Clients, episodes: list[str]) -> bool:
    for episode in episodes:
        try:
            clients.liability.GetEpisode(
                liability_pb2.GetEpisodeRequest(episode_id=episode), timeout=5
            )
        except grpc.RpcError:
            return False
    return True


def running_listed(clients: Clients) -> int:
    count, token = 0, ""
    while True:
        page = clients.liability.ListRunningClocks(
            liability_pb2.ListRunningClocksRequest(page_size=1000, page_token=token), timeout=30
        )
        count += len(page.episodes)
        token = page.next_page_token
        if not token:
            return count


def cold_start(
    bootstrap: str, suffix: str, probes: list[str], data: Path, timeout: float
) -> tuple[float, int]:
    """Seconds from `python -m discharge` starting until it answers for every probe from
    its table, and the running clocks it then lists."""
    env = {**service_env(bootstrap, data, TODAY.isoformat()), "OVERGANG_APP_ID_SUFFIX": suffix}
    worker = ServiceProcess("discharge", env["DISCHARGE_GRPC_ADDR"], data / "log", env=env)
    started = time.perf_counter()
    worker.start()
    try:
        worker.wait_serving(timeout)
        clients = Clients(dataclasses.replace(Settings(), discharge_grpc=worker.grpc_address))
        try:
            while not served_from_table(clients, probes):
                if time.perf_counter() - started > timeout:
                    raise TimeoutError(f"not recovered after {timeout:.0f} s; see {data / 'log'}")
                time.sleep(0.2)
            ready = time.perf_counter() - started
            return ready, running_listed(clients)
        finally:
            clients.close()
    finally:
        worker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooling.bench_recovery", description=__doc__)
    parser.add_argument("--running", type=int, default=5_000)
    parser.add_argument("--settled", type=int, default=8_000, help="settled inside the retention")
    parser.add_argument("--head-days", type=int, default=7, help="days in the active segment")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    os.environ["OVERGANG_TOPIC_PARTITIONS"] = str(args.partitions)

    hot = hot_clocks(args.running, args.settled)
    running = [k for k, v in hot.items() if v.get("quiet_since") is None]
    probes = list({default_partition(k, args.partitions): k for k in running}.values())
    with own_broker(broker_env(19692, BENCH_DIR / "kafka-recovery")) as bootstrap:
        ensure_topics(dataclasses.replace(load_settings(), kafka_bootstrap=bootstrap))
        empty_s, _ = cold_start(
            bootstrap, "-bench-empty", [], BENCH_DIR / "recovery-empty", args.timeout
        )
        suffix = "-bench-history"
        topic = f"{APP_ID}{suffix}-clocks-changelog"
        create_changelog(bootstrap, topic, args.partitions)
        count, size = produce(bootstrap, topic, changelog(hot, args.head_days, args.partitions))
        read_s = bare_read(bootstrap, topic, args.partitions)
        ready_s, listed = cold_start(
            bootstrap, suffix, probes, BENCH_DIR / "recovery", args.timeout
        )
    print(machine())
    print(
        f"changelog: {count} records, {size / 2**20:.0f} MB, {args.partitions} partitions "
        f"({args.running} running + {args.settled} settled clocks, a stale copy of each, "
        f"{args.head_days} days of active segment)"
    )
    print(f"baseline: bare read of the changelog {read_s:.1f} s")
    print(f"baseline: worker start on an empty changelog {empty_s:.1f} s to serve")
    print(
        f"cold start with the changelog: {ready_s:.1f} s to serve every partition from its "
        f"table ({ready_s - empty_s:.1f} s more than empty; {ready_s / read_s:.1f}x the bare "
        f"read); running clocks listed {listed} of {len(running)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
