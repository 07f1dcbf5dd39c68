"""`make demo`: the whole loop on the embedded default (local Kafka + SQLite).

A simulated March 2024 for Stavanger and its neighbours (four health offices; somatic,
mental-health and TSB patients; late answers, withdrawals, deaths, missing admission
notices). The hospital's events go through PathwayService; simulated coordinators give
the municipality's answers and service-ready reports through CoordinationService and
work part of their task backlog. The coordination service's SLA timer runs every
SLA_SECONDS against the services' clock, and the summary waits until every task overdue
at that clock has been escalated. Then a summary, a check that the services' numbers
equal `overgang replay` on the same events, and the month's report
(`.data/demo/report.html`). It also writes `.data/demo/submit.jsonl`, the same month for
`overgang submit` (synthetic test national ids).

The demo has its own broker (port 19192, data under .data/demo) and its own gRPC ports,
so it never touches a developer's running stack. The clock is fixed at 1 April 2024.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import os
import random
import shutil
import subprocess
import sys
import time
from typing import Any

import grpc

from discharge.rules import load_profile, load_rates
from overgang.codec import event_to_json
from overgang.config import load_settings, wall_clock
from overgang.events import MUNICIPAL_KINDS, OSLO, EpisodeEvent
from overgang.v1 import coordination_pb2, liability_pb2, pathway_pb2
from pathway.municipalities import load_municipalities
from tooling import stack
from tooling.clients import Clients, Submission, drain
from tooling.launcher import ServiceFailed
from tooling.month import Scope, gather
from tooling.replay import replay
from tooling.report import write_report
from tooling.simulation import ROGALAND, happened_before, simulate_month, synthetic_national_id
from tooling.stack import CHECKOUT
from tooling.statement import nok
from tooling.submit import Outcome, Sender, write_submit_file
from tooling.tasks import UNIT_KINDS, all_tasks, overdue, per_unit

CLOCK_DATE = dt.date(2024, 4, 1)
MONTH = "2024-03"
DEMO_DIR = CHECKOUT / ".data" / "demo"
SLA_SECONDS = 2  # the coordination service's escalation timer, in the demo


def demo_env() -> dict[str, str]:
    return {
        "KAFKA_PORT": "19192",
        "OVERGANG_KAFKA_DATA": str(DEMO_DIR / "kafka"),
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19192",
        "OVERGANG_DATA_DIR": str(DEMO_DIR),
        "OVERGANG_TOPIC_PARTITIONS": "3",
        "OVERGANG_CLOCK_DATE": CLOCK_DATE.isoformat(),
        "PATHWAY_GRPC_ADDR": "127.0.0.1:19151",
        "DISCHARGE_GRPC_ADDR": "127.0.0.1:19152",
        "COORDINATION_GRPC_ADDR": "127.0.0.1:19153",
        "OVERGANG_AUTH_TOKENS": "",
        "OVERGANG_PSEUDONYM_KEY": "demo-key",
        # Escalate overdue tasks (against the fixed clock) within seconds, not a minute.
        "OVERGANG_COORDINATION_SLA_SECONDS": str(SLA_SECONDS),
    }


def say(text: str) -> None:
    print(text, flush=True)


def submit_month(clients: Clients, episodes: int) -> list[EpisodeEvent]:
    """Returns the events as the services accepted them (municipal events carry the ids
    CoordinationService gave them), for the replay comparison."""
    simulated = simulate_month(2024, 3, episodes, seed=2024)
    rnd = random.Random(7)
    national_ids = {e.episode_id: synthetic_national_id(rnd) for e in simulated}
    # What has happened by the demo's "today": later events have not happened yet.
    cutoff = dt.datetime.combine(CLOCK_DATE, dt.time(0), tzinfo=OSLO)
    hospital, municipal = happened_before(simulated, cutoff)
    write_submit_file(DEMO_DIR / "submit.jsonl", hospital, municipal, national_ids)
    sender = Sender(clients)
    accepted: list[EpisodeEvent] = []

    def record(outcome: Outcome | None) -> None:
        if outcome is None:
            return  # tried again at the end (coordination is catching up)
        event = outcome.item.event
        assert event is not None
        if outcome.reason is not None:
            say(f"  event {event.event_id} rejected: {outcome.reason}")
        elif event.kind in MUNICIPAL_KINDS:  # the id CoordinationService gave it
            accepted.append(dataclasses.replace(event, event_id=outcome.event_id))
        else:
            accepted.append(event)

    first_seen: set[str] = set()
    for n, event in enumerate(hospital, start=1):
        nid = "" if event.episode_id in first_seen else national_ids[event.episode_id]
        first_seen.add(event.episode_id)
        record(sender.send(Submission(n, event, nid)))
    say(f"  hospital: {len(accepted)} events accepted by PathwayService")
    known = {e.episode_id for e in accepted}
    for n, event in enumerate((e for e in municipal if e.episode_id in known), start=1):
        assert event.kind in MUNICIPAL_KINDS
        record(sender.send(Submission(n, event, "")))
    for outcome in sender.finish():
        record(outcome)
    say(f"  coordinators: {len(municipal)} answers / service-ready reports via CoordinationService")
    return accepted


def work_backlogs(clients: Clients) -> collections.Counter[str]:
    """Simulated coordinators claim and complete part of every unit's backlog."""
    rnd = random.Random(11)
    done: collections.Counter[str] = collections.Counter()
    for unit in UNIT_KINDS:
        backlog = [update.task for update in drain([clients.task_stream(unit)])]
        for task in backlog:
            if task.status != coordination_pb2.TASK_STATUS_OPEN or rnd.random() > 0.7:
                continue
            try:
                clients.coordination.ClaimTask(
                    coordination_pb2.ClaimTaskRequest(
                        task_id=task.task_id, coordinator=f"{unit.lower()}-bot"
                    ),
                    timeout=5,
                    metadata=clients.md,
                )
                clients.coordination.CompleteTask(
                    coordination_pb2.CompleteTaskRequest(
                        task_id=task.task_id, note="done (simulated)"
                    ),
                    timeout=5,
                    metadata=clients.md,
                )
                done[unit] += 1
            except grpc.RpcError:
                pass  # the pathway made it moot meanwhile: fine
    return done


def escalated_tasks(clients: Clients, now: dt.datetime, timeout: float = 60) -> list[Any]:
    """Every task, once the coordination service's SLA timer has escalated each one that
    is overdue at the services' clock (it ticks every SLA_SECONDS)."""
    deadline = time.monotonic() + timeout
    while True:
        tasks = all_tasks(clients)
        waiting = [t for t in tasks if overdue(t, now) and not t.escalated]
        if not waiting or time.monotonic() > deadline:
            if waiting:
                say(f"  {len(waiting)} overdue tasks not escalated after {timeout:.0f} s")
            return tasks
        time.sleep(SLA_SECONDS)


def compare_with_replay(
    clients: Clients, events: list[EpisodeEvent], timeout: float = 120
) -> tuple[int, int, int, int]:
    """(equal episodes, all episodes, service NOK, replay NOK), waiting for the stream."""
    expected = {
        s.episode_id: s for s in replay(events, CLOCK_DATE, load_rates(), load_profile()).statements
    }
    deadline = time.monotonic() + timeout
    while True:
        equal, service_nok = 0, 0
        for episode_id, statement in expected.items():
            try:
                got = clients.liability.GetEpisode(
                    liability_pb2.GetEpisodeRequest(episode_id=episode_id),
                    timeout=5,
                    metadata=clients.md,
                )
            except grpc.RpcError:
                continue
            service_nok += got.amount_nok
            if (
                got.liable_days == statement.liable_days
                and got.amount_nok == statement.amount_nok
                and liability_pb2.PeriodStatus.Name(got.status) == statement.status.value
                and [(p.start, p.end, p.days) for p in got.periods]
                == [
                    (p.start.isoformat(), p.end.isoformat() if p.end else "", p.liable_days)
                    for p in statement.periods
                ]
            ):
                equal += 1
        replay_nok = sum(s.amount_nok for s in expected.values())
        if equal == len(expected) or time.monotonic() > deadline:
            return equal, len(expected), service_nok, replay_nok
        time.sleep(2)


def run_demo(episodes: int = 240, keep_running: bool = False) -> int:
    started = time.monotonic()
    env = demo_env()
    os.environ.update(env)
    settings = load_settings()
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    say("== Overgang demo: March 2024, Stavanger and neighbours (clock fixed at 2024-04-01)")
    say("-- starting Kafka (Apache Kafka 4.4.0, KRaft, from Maven Central) and three services")
    try:
        stack.start_kafka()
        for line in stack.up(settings, env):
            say("  " + line)
    except (ServiceFailed, subprocess.CalledProcessError) as exc:
        say(f"demo: could not start: {exc}")
        stack.down(settings)
        return 1
    clients = Clients(settings)
    try:
        say(f"-- submitting a simulated month: {episodes} episodes")
        events = submit_month(clients, episodes)
        history = DEMO_DIR / "events.jsonl"
        history.write_text("".join(event_to_json(e) + "\n" for e in events))
        time.sleep(3)  # let the task stream settle before the coordinators start work
        done = work_backlogs(clients)
        say(f"  coordinators completed {sum(done.values())} tasks from their backlogs")
        equal, total, service_nok, replay_nok = compare_with_replay(clients, events)

        now = wall_clock(settings)()
        tasks = escalated_tasks(clients, now)

        say("\n-- pathways by stage")
        stages = collections.Counter(p.stage for p in clients.pathways())
        for stage, count in sorted(stages.items()):
            say(f"  {pathway_pb2.Stage.Name(stage).removeprefix('STAGE_'):<16}{count:>5}")

        say("\n-- tasks per unit (SLA breached = escalated to the unit's lead)")
        header = ("tasks", "open", "overdue", "done", "cancelled", "breached")
        say(f"  {'unit':<34}" + "".join(f"{h:>10}" for h in header))
        for unit, c in per_unit(tasks, now).items():
            counts = (c.tasks, c.active, c.overdue, c.done, c.cancelled, c.escalated)
            say(f"  {unit:<34}" + "".join(f"{n:>10}" for n in counts))

        say(f"\n-- payment liability, {MONTH} (LiabilityService.GetMonthlyStatement)")
        say(f"  {'municipality':<22}{'episodes':>9}{'liable days':>13}{'NOK':>12}")
        names = load_municipalities()
        for code, _weight in ROGALAND:
            month = clients.liability.GetMonthlyStatement(
                liability_pb2.GetMonthlyStatementRequest(municipality=code, month=MONTH),
                timeout=10,
                metadata=clients.md,
            )
            name, days, amount = f"{code} {names[code]}", month.liable_days, nok(month.amount_nok)
            say(f"  {name:<22}{len(month.lines):>9}{days:>13}{amount:>12}")

        say("\n-- the services' numbers against `overgang replay` on the same events")
        say(f"  equal statements: {equal}/{total} episodes")
        say(f"  NOK: services {nok(service_nok)}, replay {nok(replay_nok)}")
        relative = history.relative_to(CHECKOUT)
        say(f"  replay it yourself: overgang replay {relative} --as-of {CLOCK_DATE}")
        submit_file = (DEMO_DIR / "submit.jsonl").relative_to(CHECKOUT)
        say(
            f"  submit it to your own stack: OVERGANG_CLOCK_DATE={CLOCK_DATE} overgang up && "
            f"overgang submit {submit_file}"
        )

        report = write_report(gather(clients, Scope(MONTH), now), DEMO_DIR / "report.html")
        say(f"\n-- report: {report.relative_to(CHECKOUT)} (open it in a browser)")
        say(f"\n== done in {time.monotonic() - started:.0f} s")
        return 0 if equal == total else 1
    finally:
        clients.close()
        if keep_running:
            say("services left running (overgang down to stop; set the demo's env to talk to them)")
        else:
            for line in stack.down(settings):
                say("  " + line)


if __name__ == "__main__":
    sys.exit(run_demo())
