"""Outages of the services themselves and of their databases, on one stack of three
real service processes (`outage.py`):

* pathway's and coordination's databases refuse every write for 30 s (another
  connection holds SQLite's write lock) while events arrive: each service waits the
  outage out, dead-letters nothing, and processes everything once its database is back;
* SIGKILL mid-stream: while a hospital's events are being submitted over gRPC and the
  municipality's answers produced, pathway or coordination is killed (nothing flushed)
  and started again; the last test kills the clock and starts it on the next Oslo day,
  so its start-up tick crosses midnight.

After each, every event is processed exactly once in effect by all three services and
the clock equals `overgang replay` (`outage.check_everything`)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from fault.outage import (
    Intake,
    Stack,
    check_everything,
    database_locked,
    in_background,
    month,
    produce,
    running,
    submit,
    wait_for,
)
from tooling.clients import Clients

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

OUTAGE_S = 30.0
NEXT_DAY = "2024-04-02"


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running(kafka_bootstrap, tmp_path_factory.mktemp("services")) as stack:
        yield stack


# ----------------------------------------------------------------------- database down
def test_without_their_databases_for_30_s_pathway_and_coordination_wait_and_lose_nothing(
    stack: Stack,
) -> None:
    """Coordination's database refuses writes for 30 s while half the episodes are
    submitted over gRPC (their pathway events wait in its agent, nothing acknowledged);
    a few seconds in, pathway's refuses writes for 30 s too while the other half is
    produced to Kafka directly (its consumer reads each again after a backoff). Nothing
    is dead-lettered; once the databases are back, everything is processed once."""
    m = month(14, seed=31)
    by_grpc = {s.episode_id for s in m.episodes[::2]}
    intake = Intake()
    clients = Clients(stack.settings)
    try:
        with database_locked(stack.database("coordination")) as coordination:
            stack.note("coordination database locked")
            coordination_back = time.monotonic() + OUTAGE_S
            submit(clients, m, [e for e in m.hospital if e.episode_id in by_grpc], intake)
            with database_locked(stack.database("pathway")):
                stack.note("pathway database locked")
                pathway_back = time.monotonic() + OUTAGE_S
                direct = [e for e in m.hospital if e.episode_id not in by_grpc]
                produce(stack.bootstrap, direct, intake)
                produce(stack.bootstrap, m.municipal, intake)
                time.sleep(max(0.0, coordination_back - time.monotonic()))
                coordination.release()
                stack.note("coordination database back")
                time.sleep(max(0.0, pathway_back - time.monotonic()))
            stack.note("pathway database back")
    finally:
        clients.close()
    assert '"event": "pathway.record_retry"' in stack.log_text("pathway"), "no outage felt"
    assert '"what": "coordination.apply"' in stack.log_text("coordination"), "no outage felt"
    check_everything(stack, intake.accepted, m)


# ----------------------------------------------------------------------------- SIGKILL
def kill_mid_stream(stack: Stack, victim: str, seed: int, **restart_env: str) -> None:
    m = month(12, seed)
    hospital, municipal = m.hospital, m.municipal
    intake = Intake()
    clients = Clients(stack.settings)
    try:
        with in_background(lambda: submit(clients, m, hospital, intake, pause=0.02)) as work:
            wait_for(intake, len(hospital) // 3, work)
            stack.kill(victim)
            produce(stack.bootstrap, municipal[: len(municipal) // 2], intake)
            stack.restart(victim, **restart_env)
        produce(stack.bootstrap, municipal[len(municipal) // 2 :], intake)
    finally:
        clients.close()
    assert intake.answers["OK"] >= len(hospital) // 2, intake.answers
    check_everything(stack, intake.accepted, m)


@pytest.mark.parametrize("victim", ["pathway", "coordination"])
def test_a_service_killed_mid_stream_loses_and_repeats_nothing(stack: Stack, victim: str) -> None:
    kill_mid_stream(stack, victim, seed=len(victim))


# The clock's write-ahead (discharge/table.py `put_unsent`) is what this checks: before
# it, a SIGKILL between an announced correction and the table's changelog write, with the
# other source topic's event redelivered first, announced the same change again under
# another cause's id (2 of 11 kills: 22 days reversed twice).
def test_the_clock_killed_mid_stream_and_started_the_next_day_announces_each_day_once(
    stack: Stack,
) -> None:
    """The clock's table comes back from its changelog, its start-up tick is the next
    Oslo day: that day is announced once, nothing before it again. Last in the module:
    the clock's "today" is the next day from here on."""
    kill_mid_stream(stack, "discharge", seed=99, OVERGANG_CLOCK_DATE=NEXT_DAY)
    assert stack.clock_date == NEXT_DAY
