"""A broker dies: on a 3-node KRaft cluster (replication 3, min in-sync 2) one node is
stopped while events are still arriving, and the clock keeps replay's numbers."""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from clock_probe import CLOCK_DATE, free_port, replay_statements, service_statement

from overgang.codec import event_to_json
from overgang.kafka.event_producer import produce_events
from overgang.v1 import liability_pb2_grpc
from tooling.launcher import ServiceProcess
from tooling.simulation import all_events, simulate_month

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(420)]

KAFKA_SH = Path(__file__).resolve().parents[2] / "infra" / "kafka" / "kafka.sh"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    # Its own ports and data: never the session's single broker.
    env = {
        **os.environ,
        "KAFKA_PORT": str(20_000 + random.randint(0, 400) * 40),
        "OVERGANG_KAFKA_DATA": str(tmp_path / "kafka"),
    }
    out = subprocess.run(
        [str(KAFKA_SH), "start-cluster"], env=env, check=True, capture_output=True, text=True
    )
    bootstrap = out.stdout.strip().splitlines()[-1]
    try:
        subprocess.run([str(KAFKA_SH), "wait-cluster"], env=env, check=True, timeout=180)
        yield env, bootstrap
    finally:
        subprocess.run([str(KAFKA_SH), "stop-cluster"], env=env, check=False)


def test_the_clock_keeps_replays_numbers_when_a_broker_dies(
    cluster: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, bootstrap = cluster
    address = f"127.0.0.1:{free_port()}"
    discharge = ServiceProcess(
        "discharge",
        address,
        tmp_path / "discharge.log",
        env={
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "OVERGANG_REPLICATION_FACTOR": "3",
            "DISCHARGE_GRPC_ADDR": address,
            "OVERGANG_CLOCK_DATE": CLOCK_DATE,
            "OVERGANG_DATA_DIR": str(tmp_path / "data"),
            "OVERGANG_APP_ID_SUFFIX": f"-broker-{uuid.uuid4().hex[:8]}",
        },
    ).start()
    try:
        discharge.wait_serving(180)
        events = list(all_events(simulate_month(2024, 3, 30, seed=5, her_id="7777")))
        random.Random(1).shuffle(events)
        half = len(events) // 2
        produce_events(bootstrap, events[:half])
        subprocess.run([str(KAFKA_SH), "stop-node", "2"], env=env, check=True)
        produce_events(bootstrap, events[half:])

        history = tmp_path / "events.jsonl"
        history.write_text("".join(event_to_json(e) + "\n" for e in events))
        expected = replay_statements(history)
        deadline = time.monotonic() + 120
        actual: dict[str, object] = {}
        with grpc.insecure_channel(address) as channel:
            stub = liability_pb2_grpc.LiabilityServiceStub(channel)
            while time.monotonic() < deadline and actual != expected:
                actual = {}
                for episode in expected:
                    with contextlib.suppress(grpc.RpcError):
                        actual[episode] = service_statement(stub, episode)
                time.sleep(1)
        assert actual == expected
    finally:
        discharge.stop()
