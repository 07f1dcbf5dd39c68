"""The outage tests' harness: the three services as real processes on a real broker, a
month of episodes submitted as users do (hospital events over gRPC or produced to Kafka,
the municipality's answers produced to Kafka), and the checks that must hold after every
fault (`check_everything`):

* the clock: every episode's statement equals `overgang replay` of the accepted events,
  and the liability topic, deduplicated by event id, adds up to the same NOK and
  rate-pending days (every liable day announced once, corrections counted);
* pathway: each accepted event once in its episode's history, the history the pure fold
  gives, and exactly one PathwayEvent id per accepted input on the topic;
* coordination: the tasks a fresh store makes from the pathway topic's events (task ids
  are deterministic), each task update made once (one sequence per update id, the
  topic's equal to the database's);
* nothing of these episodes dead-lettered.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import os
import random
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import grpc
from clock_probe import (
    CLOCK_DATE,
    announced_totals,
    free_port,
    replay_statements,
    wait_until_equal,
)
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from sqlmodel import Session, col, select

from coordination.convert import decode_pathway_event
from coordination.models import TaskUpdateRow
from coordination.rulebook import RuleBook
from coordination.runtime import MIGRATIONS as COORDINATION_MIGRATIONS
from coordination.store import TaskStore
from overgang.codec import event_to_json
from overgang.config import Settings
from overgang.events import MUNICIPAL_KINDS, OSLO, EpisodeEvent
from overgang.kafka.event_producer import produce_events
from overgang.kafka.topics import COORDINATION_TASKS, DEAD_LETTER, PATHWAY_EVENTS
from overgang.sql.engine import make_engine
from overgang.sql.migrations import migrate
from overgang.v1 import coordination_pb2, pathway_pb2
from pathway.domain.state_machine import fold
from tooling.clients import Clients, Submission
from tooling.launcher import ServiceProcess, log_tail
from tooling.simulation import SimulatedEpisode, simulate_month, synthetic_national_id

KAFKA_SH = Path(__file__).resolve().parents[2] / "infra" / "kafka" / "kafka.sh"
SERVICES = ("pathway", "coordination", "discharge")
# Answers a client waits out by asking again: the service is down or restarting.
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
T = TypeVar("T")


# ------------------------------------------------------------------------------- broker
@dataclass
class Broker:
    """A single-node broker of the test's own (port, data), to stop and start again."""

    root: Path
    port: int = field(default_factory=lambda: 21_000 + random.randint(0, 50) * 40)
    bootstrap: str = ""

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "OVERGANG_KAFKA_DATA": str(self.root),
        }

    def _run(self, *args: str, timeout: float = 180) -> str:
        out = subprocess.run(
            ["bash", str(KAFKA_SH), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert out.returncode == 0, f"kafka.sh {args}: {out.stderr[-3000:]}"
        return out.stdout

    def start(self) -> str:
        self.bootstrap = self._run("start").strip().splitlines()[-1]
        self._run("wait")
        return self.bootstrap

    def stop(self) -> None:
        self._run("stop")


# -------------------------------------------------------------------------------- stack
@dataclass
class Stack:
    """pathway, coordination and discharge as real processes, SQLite in `root`."""

    bootstrap: str
    root: Path
    clock_date: str = CLOCK_DATE  # discharge's "today" (OVERGANG_CLOCK_DATE)
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        addresses = {name: f"127.0.0.1:{free_port()}" for name in SERVICES}
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "OVERGANG_DATA_DIR": str(self.root),
            "OVERGANG_CLOCK_DATE": self.clock_date,
            "OVERGANG_APP_ID_SUFFIX": f"-outage-{uuid.uuid4().hex[:8]}",
            "OVERGANG_AUTH_TOKENS": "",
            # Faust's own setting (read from the environment): a worker started after a
            # SIGKILL takes its partitions over once the dead member's session expired,
            # 60 s by default; the tests' stacks do not wait that long.
            "BROKER_SESSION_TIMEOUT": "10",
            # A stalled changelog recovery restarts the clock inside the checks' waits.
            "OVERGANG_RECOVERY_STALL_SECONDS": "20",
            "PATHWAY_GRPC_ADDR": addresses["pathway"],
            "COORDINATION_GRPC_ADDR": addresses["coordination"],
            "DISCHARGE_GRPC_ADDR": addresses["discharge"],
        }
        for name in SERVICES:
            log = self.root / f"{name}.log"
            self.processes[name] = ServiceProcess(name, addresses[name], log, env=dict(env))

    def start(self) -> Stack:
        for process in self.processes.values():
            process.start()
        for process in self.processes.values():
            process.wait_serving(180)
        return self

    def stop(self) -> None:
        """All at once: each gets SIGTERM, then SIGKILL if it does not finish in time."""
        stoppers = [threading.Thread(target=p.stop) for p in self.processes.values()]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()

    def kill(self, name: str) -> None:
        self.processes[name].kill()
        self.note(f"{name} killed")

    def restart(self, name: str, **env: str) -> None:
        """Start a stopped or killed service again (with `env` changed) and wait for it."""
        process = self.processes[name]
        process.env.update(env)
        if name == "discharge" and "OVERGANG_CLOCK_DATE" in env:
            self.clock_date = env["OVERGANG_CLOCK_DATE"]
        process.start().wait_serving(180)
        self.note(f"{name} serving again")

    def note(self, what: str) -> None:
        """A line in the test's timeline (printed; kept in <root>/timeline.log)."""
        line = f"{time.strftime('%H:%M:%S')} {what}"
        print(line, flush=True)
        with (self.root / "timeline.log").open("a") as timeline:
            timeline.write(line + "\n")

    @property
    def settings(self) -> Settings:
        return Settings(
            pathway_grpc=self.processes["pathway"].grpc_address,
            coordination_grpc=self.processes["coordination"].grpc_address,
            discharge_grpc=self.processes["discharge"].grpc_address,
        )

    def log_text(self, name: str) -> str:
        return self.processes[name].log_path.read_text(errors="replace")

    def database(self, name: str) -> Path:
        return self.root / f"{name}.db"

    def logs(self) -> str:
        return "\n".join(
            f"--- {n} ---\n{log_tail(p.log_path, 25)}" for n, p in self.processes.items()
        )


@contextlib.contextmanager
def running(bootstrap: str, root: Path) -> Iterator[Stack]:
    stack = Stack(bootstrap, root)
    try:
        yield stack.start()
    finally:
        stack.stop()


class WriteLock:
    """A service's SQLite database refuses writes while this is held: another connection
    holds the write lock (`BEGIN EXCLUSIVE`; in WAL mode readers go on, and every writer
    waits its busy timeout, then fails with "database is locked")."""

    def __init__(self, path: Path) -> None:
        self.connection: sqlite3.Connection | None = sqlite3.connect(
            path, timeout=30, isolation_level=None
        )
        self.connection.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        if self.connection is not None:
            self.connection.execute("ROLLBACK")
            self.connection.close()
            self.connection = None


@contextlib.contextmanager
def database_locked(path: Path) -> Iterator[WriteLock]:
    """The database refuses writes in the block, or until `release()`."""
    lock = WriteLock(path)
    try:
        yield lock
    finally:
        lock.release()


# ------------------------------------------------------------------------------ a month
@dataclass
class Month:
    """Simulated episodes of one (random) hospital, so checks see only this test's."""

    episodes: list[SimulatedEpisode]
    her_id: str
    national_ids: dict[str, str]

    @property
    def prefix(self) -> str:
        return f"{self.her_id}:"

    def _before_today(self, events: Iterable[EpisodeEvent]) -> list[EpisodeEvent]:
        # What has happened by "today": intake refuses events from the future.
        cutoff = dt.datetime.combine(dt.date.fromisoformat(CLOCK_DATE), dt.time(0), tzinfo=OSLO)
        return sorted((e for e in events if e.occurred_at < cutoff), key=EpisodeEvent.sort_key)

    @property
    def hospital(self) -> list[EpisodeEvent]:
        return self._before_today(e for s in self.episodes for e in s.hospital)

    @property
    def municipal(self) -> list[EpisodeEvent]:
        events = self._before_today(e for s in self.episodes for e in s.municipal)
        assert all(e.kind in MUNICIPAL_KINDS for e in events)
        return events


def month(episodes: int, seed: int) -> Month:
    # Eight digits: no other test's hospital, nor an earlier run's on the same broker.
    her_id = str(random.randint(10_000_000, 99_999_999))
    rnd = random.Random(seed)
    simulated = simulate_month(2024, 3, episodes, seed=seed, her_id=her_id)
    return Month(simulated, her_id, {e.episode_id: synthetic_national_id(rnd) for e in simulated})


@dataclass
class Intake:
    """What the services acknowledged, and every answer intake gave."""

    accepted: list[EpisodeEvent] = field(default_factory=list)
    answers: collections.Counter[str] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, events: Iterable[EpisodeEvent]) -> None:
        with self.lock:
            self.accepted.extend(events)


def submit(
    clients: Clients,
    m: Month,
    events: Iterable[EpisodeEvent],
    intake: Intake,
    *,
    pause: float = 0.0,
    give_up_after: float = 120.0,
) -> None:
    """Each hospital event over gRPC, asked again while the answer is UNAVAILABLE (the
    service down or restarting), until OK or an illegal transition (FAILED_PRECONDITION,
    not accepted). Any other answer fails the test."""
    for event in events:
        deadline = time.monotonic() + give_up_after
        while True:
            try:
                clients.submit(Submission(0, event, m.national_ids[event.episode_id]))
            except grpc.RpcError as error:
                with intake.lock:
                    intake.answers[error.code().name] += 1
                if error.code() in RETRYABLE and time.monotonic() < deadline:
                    time.sleep(0.5)
                    continue
                assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, (
                    f"{event.event_id}: {error.code().name}: {error.details()}"
                )
                break
            with intake.lock:
                intake.answers["OK"] += 1
            intake.add([event])
            break
        if pause:
            time.sleep(pause)


def produce(bootstrap: str, events: list[EpisodeEvent], intake: Intake) -> None:
    """Events produced to Kafka directly, as an integration may (acknowledged by all
    in-sync replicas before this returns)."""
    produce_events(bootstrap, events)
    intake.add(events)


@dataclass
class Background:
    thread: threading.Thread
    failure: list[BaseException] = field(default_factory=list)

    def check(self) -> None:
        """Re-raise what the work raised, if it did."""
        if self.failure:
            raise self.failure[0]


@contextlib.contextmanager
def in_background(work: Callable[[], None]) -> Iterator[Background]:
    """`work` in a thread; its exception is raised when the block ends (or `check()`)."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            failure.append(exc)

    background = Background(threading.Thread(target=run, daemon=True), failure)
    background.thread.start()
    yield background
    background.thread.join(300)
    assert not background.thread.is_alive(), "background work did not finish"
    background.check()


def wait_for(intake: Intake, accepted: int, background: Background, timeout: float = 60) -> None:
    """Until `accepted` events were acknowledged."""
    deadline = time.monotonic() + timeout
    while len(intake.accepted) < accepted:
        background.check()
        assert time.monotonic() < deadline, f"only {len(intake.accepted)} events accepted"
        time.sleep(0.1)


# ------------------------------------------------------------------------------- checks
def read_topic(bootstrap: str, topic: str, key_prefix: str) -> list[ConsumerRecord]:
    """Every record of `topic` whose key starts with `key_prefix`, up to the end offsets
    at the time of the call, in partition order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(r for r in batch if (r.key or b"").startswith(key_prefix.encode()))
        return records
    finally:
        consumer.close()


def eventually(check: Callable[[], T], timeout: float, what: str) -> T:
    """`check()` once it stops raising AssertionError, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} after {timeout:.0f} s: {exc}") from None
        time.sleep(1)


def by_episode(events: Iterable[EpisodeEvent]) -> dict[str, list[EpisodeEvent]]:
    grouped: dict[str, list[EpisodeEvent]] = collections.defaultdict(list)
    for event in events:
        grouped[event.episode_id].append(event)
    return dict(grouped)


def check_clock(stack: Stack, accepted: list[EpisodeEvent], prefix: str, timeout: float) -> None:
    """Statements equal replay; the announced days add up to them."""
    history = stack.root / f"events-{prefix.rstrip(':')}.jsonl"
    history.write_text("".join(event_to_json(e) + "\n" for e in accepted))
    expected = replay_statements(history, stack.clock_date)
    wait_until_equal(stack.processes["discharge"].grpc_address, expected, timeout=timeout)
    replayed = {
        episode: (int(s["amountNok"]), int(s["pendingDays"]))  # type: ignore[call-overload]
        for episode, s in expected.items()
    }
    assert sum(nok for nok, _ in replayed.values()) > 0, "no liable day: a weak test"
    # Announcements are acknowledged before the table records them: all are on the topic.
    announced = announced_totals(stack.bootstrap, prefix)
    differ = {
        episode: {"announced": announced.get(episode, (0, 0)), "replay": replayed.get(episode)}
        for episode in set(announced) | set(replayed)
        if announced.get(episode, (0, 0)) != replayed.get(episode, (0, 0))
    }
    if differ:
        raise AnnouncementsDiffer(
            f"{len(differ)} episodes' announced (NOK, rate-pending days), deduplicated by "
            f"event id, differ from replay's statement: {differ}"
        )


class AnnouncementsDiffer(AssertionError):
    """The liability topic does not add up to the statements (a day announced twice or
    not at all), though the statements themselves equal replay's."""


class OutboxStuck(AssertionError):
    """A relay's idempotent producer went out of sequence with the broker for good."""


STUCK_PRODUCER = "OutOfOrderSequenceNumber"


def check_pathways(
    stack: Stack, accepted: list[EpisodeEvent], prefix: str, timeout: float
) -> set[str]:
    """Each episode's history is the fold's, each event in it once; the pathway topic has
    one PathwayEvent id per accepted input. Returns those ids."""
    expected_history: dict[str, list[str]] = {}
    expected_ids: set[str] = set()
    for episode, events in by_episode(accepted).items():
        result = fold(events)
        assert result.state is not None, f"{episode}: no accepted event"
        expected_history[episode] = [h.cause_id for h in result.state.history]
        expected_ids |= {f"{s.item.event_id}:pathway" for s in result.steps if s.accepted}
    clients = Clients(stack.settings)

    def histories() -> None:
        for episode, wanted in expected_history.items():
            try:
                pathway = clients.pathway.GetPathway(
                    pathway_pb2.GetPathwayRequest(episode_id=episode), timeout=10
                )
            except grpc.RpcError as error:
                raise AssertionError(f"{episode}: {error.code().name}") from None
            got = [h.cause_event_id for h in pathway.history]
            assert got == wanted, (episode, got, wanted)

    def announced() -> None:
        ids = {
            pathway_pb2.PathwayEvent.FromString(r.value).event_id
            for r in read_topic(stack.bootstrap, PATHWAY_EVENTS, prefix)
        }
        assert ids == expected_ids, (sorted(ids - expected_ids), sorted(expected_ids - ids))

    try:
        eventually(histories, timeout, "pathway histories differ from the fold")
        eventually(announced, timeout, "pathway events differ from the accepted inputs")
    finally:
        clients.close()
    return expected_ids


TaskKey = tuple[str, str, str, str, str, str]


def _task_keys(store: TaskStore, episodes: Iterable[str]) -> set[TaskKey]:
    return {
        (t.task_id, t.kind.value, t.unit, t.status.value, t.due_at.isoformat(), t.cancel_reason)
        for episode in episodes
        for t in store.tasks_of(episode)
    }


def check_tasks(stack: Stack, prefix: str, episodes: set[str], timeout: float) -> None:
    """The live tasks are those a fresh store makes from the pathway topic's events, in
    topic order (task ids are deterministic); each update made once and published."""
    clock_at = dt.datetime.combine(dt.date.fromisoformat(CLOCK_DATE), dt.time(0), tzinfo=OSLO)
    live_engine = make_engine(f"sqlite:///{stack.database('coordination')}")
    live = TaskStore(live_engine, RuleBook(), lambda: clock_at)

    def expected() -> set[TaskKey]:
        engine = make_engine("sqlite://")
        migrate(engine, COORDINATION_MIGRATIONS)
        fresh = TaskStore(engine, RuleBook(), lambda: clock_at)
        for record in read_topic(stack.bootstrap, PATHWAY_EVENTS, prefix):
            fresh.apply_change(decode_pathway_event(record.value, received_at=clock_at))
        keys = _task_keys(fresh, episodes)
        engine.dispose()
        return keys

    def same_tasks() -> None:
        wanted, got = expected(), _task_keys(live, episodes)
        assert wanted, "no task made: a weak test"
        assert got == wanted, (sorted(got - wanted)[:3], sorted(wanted - got)[:3])

    def published_once() -> None:
        on_topic: dict[str, set[int]] = collections.defaultdict(set)
        for record in read_topic(stack.bootstrap, COORDINATION_TASKS, prefix):
            update = coordination_pb2.TaskUpdate.FromString(record.value)
            on_topic[update.update_id].add(update.sequence)
        with Session(live_engine) as session:
            rows = session.exec(
                select(TaskUpdateRow).where(col(TaskUpdateRow.task_id).startswith(prefix))
            )
            in_database = {r.update_id: {r.sequence or 0} for r in rows}
        differ = {
            u: (on_topic.get(u), in_database.get(u))
            for u in set(on_topic) | set(in_database)
            if on_topic.get(u) != in_database.get(u)
        }
        assert not differ, f"update id: (sequences on the topic, in the log): {differ}"

    try:
        eventually(same_tasks, timeout, "coordination tasks differ from a fresh store's")
        eventually(published_once, timeout, "task updates on the topic differ from the log")
    finally:
        live_engine.dispose()


def check_no_dead_letters(stack: Stack, prefix: str) -> None:
    dead = read_topic(stack.bootstrap, DEAD_LETTER, prefix)
    reasons = [dict(r.headers).get("dlq.reason", b"").decode() for r in dead]
    assert reasons == [], f"{len(reasons)} dead-lettered, e.g. {reasons[:5]}"


def check_everything(
    stack: Stack, accepted: list[EpisodeEvent], m: Month, timeout: float = 90
) -> None:
    """After a fault: every accepted event processed exactly once in effect, by all three
    services (see the module's docstring)."""
    try:
        stack.note(f"checking {len(accepted)} accepted events of {m.prefix}")
        check_clock(stack, accepted, m.prefix, timeout)
        stack.note("clock equals replay")
        check_pathways(stack, accepted, m.prefix, timeout)
        stack.note("pathways equal the fold")
        check_tasks(stack, m.prefix, {s.episode_id for s in m.episodes}, timeout)
        stack.note("tasks equal a fresh store's")
        check_no_dead_letters(stack, m.prefix)
    except AnnouncementsDiffer as exc:
        raise AnnouncementsDiffer(f"{exc}\n{stack.logs()}") from None
    except AssertionError as exc:
        stuck = [n for n in SERVICES if STUCK_PRODUCER in stack.log_text(n)]
        if stuck:
            raise OutboxStuck(f"{STUCK_PRODUCER} in the logs of {stuck}: {exc}") from None
        raise AssertionError(f"{exc}\n{stack.logs()}") from None
