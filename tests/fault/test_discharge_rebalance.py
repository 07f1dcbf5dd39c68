"""A rebalance: two discharge workers share the clock's partitions; when one leaves, the
other takes its partitions over from the changelog, with the numbers `overgang replay`
gives. A worker asked about a partition it does not serve says so (UNAVAILABLE)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from clock_probe import CLOCK_DATE, free_port, replay_statements, service_statement

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


def statements(addresses: list[str], episodes: list[str]) -> dict[str, object]:
    """Each episode from whichever worker serves its partition."""
    found: dict[str, object] = {}
    for address in addresses:
        with grpc.insecure_channel(address) as channel:
            stub = liability_pb2_grpc.LiabilityServiceStub(channel)
            for episode in episodes:
                if episode in found:
                    continue
                try:
                    found[episode] = service_statement(stub, episode)
                except grpc.RpcError as error:
                    if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND):
                        raise
    return found


def wait_equal(addresses: list[str], expected: dict[str, object], timeout: float = 120) -> None:
    import time

    deadline = time.monotonic() + timeout
    got: dict[str, object] = {}
    while time.monotonic() < deadline:
        got = statements(addresses, list(expected))
        if got == expected:
            return
        time.sleep(1)
    missing = [e for e in expected if got.get(e) != expected[e]]
    raise AssertionError(f"{len(missing)} episodes differ from replay, e.g. {missing[:3]}")


@pytest.mark.faust_recovery_hang
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
    wait_equal([first.grpc_address, second.grpc_address], expected)

    first.stop()  # leaves the group: its partitions move to the second worker
    wait_equal([second.grpc_address], expected)


def test_a_worker_says_which_partition_it_does_not_serve(two_workers: list[ServiceProcess]) -> None:
    import time

    # With 3 partitions and 2 workers, one worker lacks at least one partition.
    answers = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and grpc.StatusCode.UNAVAILABLE not in answers:
        for n in range(30):
            episode = f"99:unknown-{n}"
            with grpc.insecure_channel(two_workers[0].grpc_address) as channel:
                stub = liability_pb2_grpc.LiabilityServiceStub(channel)
                try:
                    stub.GetEpisode(pb.GetEpisodeRequest(episode_id=episode), timeout=5)
                except grpc.RpcError as error:
                    answers.add(error.code())
        time.sleep(1)
    assert answers == {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE}
