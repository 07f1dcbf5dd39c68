"""A rebalance: two discharge workers share the clock's partitions; either answers for
every episode (it forwards to the owner) with the numbers `overgang replay` gives, and
when one leaves, the other takes its partitions over from the changelog with the same
numbers. (faust-streaming lost input events on that hand-over: discharge/faust_recovery.py)"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from clock_probe import CLOCK_DATE, free_port, replay_statements, wait_until_equal

from overgang.codec import event_to_json
from overgang.kafka.event_producer import produce_events
from overgang.v1 import liability_pb2 as pb
from overgang.v1 import liability_pb2_grpc
from tooling.launcher import ServiceProcess
from tooling.simulation import all_events, simulate_month

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]


@pytest.fixture
def two_workers(kafka_bootstrap: str, tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    suffix = f"-rebalance-{uuid.uuid4().hex[:8]}"
    workers = []
    for n in (1, 2):
        address = f"127.0.0.1:{free_port()}"
        workers.append(
            ServiceProcess(
                "discharge",
                address,
                tmp_path / f"discharge-{n}.log",
                env={
                    "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                    "DISCHARGE_GRPC_ADDR": address,
                    "OVERGANG_CLOCK_DATE": CLOCK_DATE,
                    "OVERGANG_DATA_DIR": str(tmp_path / f"data-{n}"),
                    "OVERGANG_APP_ID_SUFFIX": suffix,
                    # faust's rebalance and recovery steps, for a failure's explanation
                    "OVERGANG_FAUST_LOGLEVEL": "INFO",
                    # A stalled changelog recovery restarts the worker well inside the
                    # test's waits (discharge/recovery_watchdog.py; default 60 s).
                    "OVERGANG_RECOVERY_STALL_SECONDS": "20",
                    # faust's own setting: the group drops a restarted worker's old
                    # member after this (default 60 s), as in the outage tests' stack.
                    "BROKER_SESSION_TIMEOUT": "10",
                },
            ).start()
        )
    try:
        for worker in workers:
            worker.wait_serving(180)
        yield workers
    finally:
        for worker in workers:
            worker.stop()


def monthly_nok(address: str, her_id: str) -> int:
    """The hospital's March statement (the topics hold other tests' episodes too)."""
    with grpc.insecure_channel(address) as channel:
        stub = liability_pb2_grpc.LiabilityServiceStub(channel)
        request = pb.GetMonthlyStatementRequest(her_id=her_id, month="2024-03")
        return int(stub.GetMonthlyStatement(request, timeout=10).amount_nok)


def test_a_worker_leaving_hands_its_partitions_over_with_the_same_numbers(
    kafka_bootstrap: str, two_workers: list[ServiceProcess], tmp_path: Path
) -> None:
    her_id = str(random.randint(10_000_000, 99_999_999))
    events = list(all_events(simulate_month(2024, 3, 40, seed=21, her_id=her_id)))
    produce_events(kafka_bootstrap, events)
    history = tmp_path / "events.jsonl"
    history.write_text("".join(event_to_json(e) + "\n" for e in events))
    expected = replay_statements(history)

    first, second = two_workers
    with logs_on_failure(two_workers):
        hand_over(first, second, expected, her_id)


@contextmanager
def logs_on_failure(workers: list[ServiceProcess]) -> Iterator[None]:
    """A failure shows what each worker's faust did (rebalances, recovery, rewinds)."""
    try:
        yield
    except AssertionError as failure:
        steps = "\n\n".join(f"{w.log_path.name}:\n{_steps(w.log_path)}" for w in workers)
        raise AssertionError(f"{failure}\n\n{steps}") from None


def _steps(path: Path) -> str:
    words = ("rebalanc", "recover", "assign", "revok", "rewound", "Seek", "Resum", "ready")
    # (the watchdog's "recovery.stalled" / "recovery.restarting" lines match "recover")
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(line[:240] for line in lines if any(w in line for w in words))[-6000:]


def hand_over(
    first: ServiceProcess,
    second: ServiceProcess,
    expected: dict[str, dict[str, object]],
    her_id: str,
) -> None:
    # Either worker answers for every episode: calls for the other's partitions are
    # forwarded to it, so finance need not know which worker owns which episode.
    wait_until_equal(first.grpc_address, expected, timeout=120)
    wait_until_equal(second.grpc_address, expected, timeout=30)
    # As of 2024-04-01 every liable day of the simulated March is in March.
    march = sum(int(statement["amountNok"]) for statement in expected.values())  # type: ignore[call-overload]
    assert march > 0
    assert (monthly_nok(first.grpc_address, her_id), monthly_nok(second.grpc_address, her_id)) == (
        march,
        march,
    )

    first.stop()  # leaves the group: its partitions move to the second worker
    wait_until_equal(second.grpc_address, expected, timeout=120)


def test_a_worker_answers_for_the_other_workers_partitions(
    two_workers: list[ServiceProcess],
) -> None:
    # Unknown episodes on all 3 partitions: once the group is settled, each worker answers
    # NOT_FOUND for every one (its own, or forwarded), never "ask another worker". Until
    # then UNAVAILABLE: a worker serves nothing while its changelog recovery runs, which
    # on this 2-core machine under a full test run has taken over a minute.
    deadline = time.monotonic() + 180
    answers: set[grpc.StatusCode] = set()
    while time.monotonic() < deadline:
        answers = set()
        for worker in two_workers:
            with grpc.insecure_channel(worker.grpc_address) as channel:
                stub = liability_pb2_grpc.LiabilityServiceStub(channel)
                for n in range(30):
                    request = pb.GetEpisodeRequest(episode_id=f"99:unknown-{n}")
                    try:
                        stub.GetEpisode(request, timeout=5)
                    except grpc.RpcError as error:
                        answers.add(error.code())
        if answers == {grpc.StatusCode.NOT_FOUND}:
            return
        time.sleep(1)  # UNAVAILABLE while the group rebalances
    raise AssertionError(f"answers while settled: {answers}")
