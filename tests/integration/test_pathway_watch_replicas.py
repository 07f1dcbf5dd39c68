"""WatchPathways on any pathway replica sees the changes every replica makes: two
replicas share the database and the intake consumer group; an event submitted to one
reaches a watcher of the other, once."""

from __future__ import annotations

import asyncio
import queue
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from test_pathway_kafka import NID, Service, event, submit

from overgang.v1 import pathway_pb2, pathway_pb2_grpc

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def replicas(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Service, Service]]:
    db = tmp_path_factory.mktemp("replicas") / "pathway.db"
    group = f"pathway-replicas-{uuid.uuid4().hex[:8]}"
    first, second = Service(kafka_bootstrap, db), Service(kafka_bootstrap, db)
    for replica in (first, second):
        replica.runtime.group_id = group
    with first, second:
        for replica in (first, second):
            assert replica.runtime.watch_feed is not None
            replica.call(asyncio.wait_for(replica.runtime.watch_feed.ready.wait(), 30))
        yield first, second


def _watch(address: str, found: queue.Queue[Any]) -> grpc.Channel:
    channel = grpc.insecure_channel(address)
    stream = pathway_pb2_grpc.PathwayServiceStub(channel).WatchPathways(
        pathway_pb2.WatchPathwaysRequest()
    )

    def pump() -> None:
        try:
            for update in stream:
                found.put(update)
        except grpc.RpcError:
            pass

    threading.Thread(target=pump, daemon=True).start()
    return channel


def test_a_watcher_of_one_replica_sees_an_event_submitted_to_the_other_once(
    replicas: tuple[Service, Service],
) -> None:
    first, second = replicas
    episode = f"81234:watch-{uuid.uuid4().hex[:12]}"
    found: queue.Queue[Any] = queue.Queue()
    channel = _watch(f"127.0.0.1:{second.runtime.port}", found)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{first.runtime.port}") as intake:
            submit(pathway_pb2_grpc.PathwayServiceStub(intake), event(episode, "admitted", 0), NID)
        seen: list[Any] = []
        try:
            while True:
                update = found.get(timeout=20 if not seen else 3)
                if episode in str(update):
                    seen.append(update)
        except queue.Empty:
            pass
        assert len(seen) == 1
    finally:
        channel.close()


def test_replicas_share_one_database(replicas: tuple[Service, Service], tmp_path: Path) -> None:
    first, second = replicas
    assert first.runtime.settings.database_url == second.runtime.settings.database_url
