"""`make load`: the local stack under a chosen load (issue 10, items 5 and 6), bounded in
time and count, on loopback only, with a broker of its own (port 19492, data under
.data/load; KAFKA_PORT and OVERGANG_KAFKA_DATA override), wiped first.

Hospital events go in over gRPC (`PathwayService.SubmitHospitalEvent`) at `--rate` events
per second: episodes start as a Poisson process (the expected count for `--seconds`, at
most `--episodes`), each sending admitted, admission notice, discharge-ready notice and
discharged, `--gap` seconds apart (in order: the first carries the national id). The
admission notice and the discharge-ready notice each put a task on the health office's
`CoordinationService.StreamTasks` stream; the latency is from just before the submit to
the task's arrival on the stream (matched by `trigger_event_id`). Sending is open-loop:
a slow answer does not slow the schedule (how far sends fell behind it is printed).
Printed: the achieved rate and p50/p99 of a gRPC health check (the baseline, same run),
of the submit call and of event to task, each also as a ratio to the baseline's p50.

The national peak, from issue 10's figures: 94 000 discharge-ready patients a year with
about 5 events each are 470 000 events a year. Sent in weekday working hours (about 250
days of 8 hours: 2 000 hours) that is 235 events an hour, 0.065 a second; with the busiest
hour taken as 3 times an average working hour and the busiest weekday as 1.5 times an
average one, the peak is about 0.3 events a second (1 060 an hour) for all of Norway. The
default `--rate` is ten times that.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import math
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from overgang.codec import event_to_proto
from overgang.config import Settings
from overgang.events import Destination, Division, EpisodeEvent, EventKind, Need
from overgang.v1 import coordination_pb2, coordination_pb2_grpc, pathway_pb2, pathway_pb2_grpc
from tooling.bench_env import broker_env, own_broker, service_env
from tooling.launcher import ServiceProcess
from tooling.simulation import HOSPITAL_HER_ID, synthetic_national_id
from tooling.stack import CHECKOUT, services

LOAD_DIR = CHECKOUT / ".data" / "load"
PATIENTS_PER_YEAR = 94_000
EVENTS_PER_PATIENT = 5
WORKING_HOURS_PER_YEAR = 250 * 8
PEAK_HOUR_FACTOR, PEAK_DAY_FACTOR = 3.0, 1.5
NATIONAL_PEAK = (
    PATIENTS_PER_YEAR
    * EVENTS_PER_PATIENT
    / (WORKING_HOURS_PER_YEAR * 3600)
    * PEAK_HOUR_FACTOR
    * PEAK_DAY_FACTOR
)  # events per second, about 0.29
MUNICIPALITIES = ("1108", "1124", "1127", "1130")  # default rules: one HEALTH_OFFICE
TASK_KINDS = (EventKind.ADMISSION_NOTIFIED, EventKind.DISCHARGE_READY_NOTIFIED)
UNIT = "HEALTH_OFFICE"


def episode_events(number: int, tag: str, rnd: random.Random) -> list[EpisodeEvent]:
    """Admitted, admission notice, discharge-ready notice, discharged: times just past."""
    episode = f"{HOSPITAL_HER_ID}:{tag}-{number:06d}"
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    admitted = EpisodeEvent(
        f"{episode}:1",
        episode,
        now - dt.timedelta(hours=3),
        rnd.choice(MUNICIPALITIES),
        Division.SOMATIC,
        EventKind.ADMITTED,
    )
    notice_at = now - dt.timedelta(hours=1)
    needs = (Need.HOME_NURSING,)
    return [
        admitted,
        dataclasses.replace(
            admitted,
            event_id=f"{episode}:2",
            occurred_at=now - dt.timedelta(hours=2),
            kind=EventKind.ADMISSION_NOTIFIED,
            needs=needs,
        ),
        dataclasses.replace(
            admitted,
            event_id=f"{episode}:3",
            occurred_at=notice_at,
            kind=EventKind.DISCHARGE_READY_NOTIFIED,
            ready_at=notice_at,
            needs=needs,
        ),
        dataclasses.replace(
            admitted,
            event_id=f"{episode}:4",
            occurred_at=now - dt.timedelta(minutes=10),
            kind=EventKind.DISCHARGED,
            destination=Destination.HOME,
        ),
    ]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q / 100 * len(ordered)))) - 1]


@dataclass
class Measured:
    health: list[float] = field(default_factory=list)  # seconds
    submit: list[float] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)  # sends behind their schedule
    sent_at: dict[str, float] = field(default_factory=dict)  # trigger event id -> clock
    task_at: dict[str, float] = field(default_factory=dict)
    sent: int = 0
    rejected: int = 0
    first_send: float = 0.0
    last_send: float = 0.0

    def to_task(self) -> list[float]:
        return [self.task_at[e] - t for e, t in self.sent_at.items() if e in self.task_at]


async def _health(address: str, calls: int, into: list[float]) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(calls):
            start = time.perf_counter()
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            into.append(time.perf_counter() - start)


async def _watch(stub: coordination_pb2_grpc.CoordinationServiceStub, m: Measured) -> None:
    async for update in stub.StreamTasks(coordination_pb2.StreamTasksRequest(unit=UNIT)):
        m.task_at.setdefault(update.task.trigger_event_id, time.perf_counter())


async def _episode(
    stub: pathway_pb2_grpc.PathwayServiceStub,
    events: list[EpisodeEvent],
    national_id: str,
    start: float,
    gap: float,
    m: Measured,
) -> None:
    for n, event in enumerate(events):
        planned = start + n * gap
        await asyncio.sleep(max(0.0, planned - time.perf_counter()))
        request = pathway_pb2.SubmitHospitalEventRequest(
            event=event_to_proto(event), national_id=national_id if n == 0 else ""
        )
        sent = time.perf_counter()
        m.lag.append(sent - planned)
        m.first_send = min(m.first_send or sent, sent)
        if event.kind in TASK_KINDS:
            m.sent_at[event.event_id] = sent
        try:
            await stub.SubmitHospitalEvent(request, timeout=30)
        except grpc.RpcError:
            m.rejected += 1
            m.sent_at.pop(event.event_id, None)
            return  # the rest of the episode would be refused too
        m.submit.append(time.perf_counter() - sent)
        m.sent += 1
        m.last_send = max(m.last_send, sent)


async def drive(
    settings: Settings, rate: float, seconds: float, episodes: int, gap: float, drain: float
) -> Measured:
    m = Measured()
    rnd = random.Random(2024)
    tag = f"L{int(time.time())}"
    await _health(settings.pathway_grpc, 100, m.health)
    async with (
        grpc.aio.insecure_channel(settings.pathway_grpc) as pathway_channel,
        grpc.aio.insecure_channel(settings.coordination_grpc) as coordination_channel,
    ):
        pathway = pathway_pb2_grpc.PathwayServiceStub(pathway_channel)
        watcher = asyncio.create_task(
            _watch(coordination_pb2_grpc.CoordinationServiceStub(coordination_channel), m)
        )
        await asyncio.sleep(2)  # the stream is open and its (empty) backlog sent
        per_episode = len(episode_events(0, tag, rnd))
        # A Poisson process with exactly the expected number of episode starts: given
        # their count, the start times of a Poisson process are uniform in the window.
        count = min(episodes, max(1, round(rate * seconds / per_episode)))
        first = time.perf_counter() + 0.5
        starts = sorted(first + rnd.uniform(0, seconds) for _ in range(count))
        senders = [
            _episode(pathway, episode_events(n, tag, rnd), synthetic_national_id(rnd), s, gap, m)
            for n, s in enumerate(starts)
        ]
        await asyncio.gather(*senders)
        deadline = time.monotonic() + drain
        while set(m.sent_at) - set(m.task_at) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        watcher.cancel()
    await _health(settings.pathway_grpc, 100, m.health)
    return m


def report(m: Measured, rate: float) -> list[str]:
    span = max(m.last_send - m.first_send, 1e-9)
    base = percentile(m.health, 50)
    to_task = m.to_task()
    missing = len(m.sent_at) - len(to_task)
    lines = [
        f"overgang load: {rate:.2f} hospital events/s asked ({rate / NATIONAL_PEAK:.1f}x the "
        f"national peak of {NATIONAL_PEAK:.2f} events/s)",
        f"  sent {m.sent} events in {span:.1f} s: {m.sent / span:.2f} events/s achieved, "
        f"{m.rejected} rejected; {len(to_task)} tasks seen, {missing} missing; sends behind "
        f"schedule p99 {percentile(m.lag, 99) * 1e3:.1f} ms",
        f"  {'latency':<44}{'p50 ms':>9}{'p99 ms':>9}{'p50 x base':>12}{'p99 x base':>12}",
    ]
    for name, values in (
        ("baseline: gRPC health check round trip", m.health),
        ("SubmitHospitalEvent (pathway)", m.submit),
        ("hospital event -> task on StreamTasks", to_task),
    ):
        p50, p99 = percentile(values, 50), percentile(values, 99)
        lines.append(
            f"  {name:<44}{p50 * 1e3:>9.1f}{p99 * 1e3:>9.1f}{p50 / base:>12.1f}{p99 / base:>12.1f}"
        )
    p99 = percentile(to_task, 99)
    verdict = "met" if p99 < 0.5 and not missing else "NOT met"
    lines.append(f"  target p99 event -> task < 500 ms: {verdict} ({p99 * 1e3:.0f} ms)")
    return lines


def start_stack(bootstrap: str, directory: Path) -> tuple[Settings, list[ServiceProcess]]:
    """The three services on `bootstrap`, data and logs under `directory`."""
    env = service_env(bootstrap, directory / "services", "")
    env["OVERGANG_PSEUDONYM_KEY"] = "load-harness-key"
    settings = Settings(
        pathway_grpc=env["PATHWAY_GRPC_ADDR"],
        coordination_grpc=env["COORDINATION_GRPC_ADDR"],
        discharge_grpc=env["DISCHARGE_GRPC_ADDR"],
    )
    processes = [
        ServiceProcess(s.module, s.address, directory / "logs" / f"{s.name}.log", env=env).start()
        for s in services(settings)
    ]
    for process in processes:
        process.wait_serving(180)
    return settings, processes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooling.load", description=__doc__)
    parser.add_argument("--rate", type=float, default=round(10 * NATIONAL_PEAK, 2))
    parser.add_argument("--seconds", type=float, default=60.0, help="how long episodes start")
    parser.add_argument("--episodes", type=int, default=5000, help="at most this many")
    parser.add_argument(
        "--gap", type=float, default=1.0, help="seconds between an episode's events"
    )
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait for tasks")
    args = parser.parse_args(argv)
    shutil.rmtree(LOAD_DIR, ignore_errors=True)
    with own_broker(broker_env(19492, LOAD_DIR / "kafka")) as bootstrap:
        settings, processes = start_stack(bootstrap, LOAD_DIR)
        try:
            m = asyncio.run(
                drive(settings, args.rate, args.seconds, args.episodes, args.gap, args.drain)
            )
        finally:
            for process in reversed(processes):
                process.stop()
    for line in report(m, args.rate):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
