"""Scrape-time gauges: the outbox backlog and grouped counts from SQL, consumer lag read
from Faust and aiokafka consumers (fakes with their APIs), state read on the event
loop's thread, a failing source left out of one scrape, and close() undoing a service."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, SQLModel, col

from overgang.metrics import Metrics
from overgang.metrics_watch import (
    ServiceMetrics,
    UnitTasks,
    aiokafka_lags,
    count_by,
    faust_lags,
    on_loop,
    outbox_backlog,
)
from overgang.sql.engine import make_engine
from overgang.sql.outbox import OutboxRow, enqueue

TP = namedtuple("TP", "topic partition")
HOSPITAL = "overgang.hospital-events.v1"


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    engine = make_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    SQLModel.metadata.create_all(engine, tables=[OutboxRow.__table__])  # type: ignore[attr-defined]
    yield engine
    engine.dispose()


def test_outbox_backlog_counts_unpublished_rows(engine: Any) -> None:
    with Session(engine) as session:
        for n in range(3):
            enqueue(session, HOSPITAL, b"k", str(n).encode())
        session.commit()
        row = session.get(OutboxRow, 1)
        assert row is not None
        row.published_at = dt.datetime.now(dt.UTC)
        session.add(row)
        session.commit()
    assert outbox_backlog(engine) == 2
    metrics = ServiceMetrics("pathway", Metrics())
    metrics.watch_outbox(engine)
    assert value(metrics.metrics, "overgang_outbox_backlog_rows", service="pathway") == 2


def test_count_by_groups(engine: Any) -> None:
    with Session(engine) as session:
        for topic in ("a", "a", "b"):
            enqueue(session, topic, None, b"v")
        session.commit()
    assert count_by(engine, col(OutboxRow.topic)) == {("a",): 2, ("b",): 1}
    only_b = count_by(engine, col(OutboxRow.topic), where=[col(OutboxRow.topic) == "b"])
    assert only_b == {("b",): 1}


def test_tasks_running_clocks_and_stages_by_their_labels() -> None:
    metrics = ServiceMetrics("coordination", Metrics())
    metrics.watch_tasks(lambda: {("1103", "HEALTH_OFFICE/MADLA_HILLEVAAG"): UnitTasks(5, 2, 1)})
    metrics.watch_running_clocks(lambda: {"1103": 7, "not-a-kommune": 1})
    registry = metrics.metrics
    unit = {
        "service": "coordination",
        "municipality": "1103",
        "unit": "HEALTH_OFFICE/MADLA_HILLEVAAG",
    }
    assert value(registry, "overgang_tasks_open", **unit) == 5
    assert value(registry, "overgang_tasks_overdue", **unit) == 2
    assert value(registry, "overgang_tasks_escalated", **unit) == 1
    clocks = {"service": "coordination"}
    assert value(registry, "overgang_running_clocks", **clocks, municipality="1103") == 7
    assert value(registry, "overgang_running_clocks", **clocks, municipality="unknown") == 1


def test_a_failing_source_is_left_out_and_the_others_are_exported() -> None:
    metrics = Metrics()
    broken, working = ServiceMetrics("pathway", metrics), ServiceMetrics("other", metrics)

    def fails() -> dict[str, int]:
        raise RuntimeError("database is locked")

    broken.watch_pathways(fails)
    working.watch_pathways(lambda: {"CLOSED": 4})
    assert value(metrics, "overgang_pathways", service="other", stage="CLOSED") == 4
    assert value(metrics, "overgang_pathways", service="pathway", stage="CLOSED") is None


def test_close_removes_the_services_sources_and_lags() -> None:
    metrics = Metrics()
    service = ServiceMetrics("pathway", metrics)
    service.watch_pathways(lambda: {"ADMITTED": 1})
    metrics.consumer_lag("pathway", HOSPITAL, 0, 12)
    assert (
        value(
            metrics,
            "overgang_consumer_lag_records",
            service="pathway",
            topic=HOSPITAL,
            partition="0",
        )
        == 12
    )
    service.close()
    assert value(metrics, "overgang_pathways", service="pathway", stage="ADMITTED") is None
    assert (
        value(
            metrics,
            "overgang_consumer_lag_records",
            service="pathway",
            topic=HOSPITAL,
            partition="0",
        )
        is None
    )


def test_reported_lags_replace_the_services_partitions() -> None:
    metrics = Metrics()
    metrics.consumer_lags("pathway", {(HOSPITAL, 0): 5, (HOSPITAL, 1): 9})
    metrics.consumer_lags("pathway", {(HOSPITAL, 1): 2})  # partition 0 was revoked
    lag = "overgang_consumer_lag_records"
    assert value(metrics, lag, service="pathway", topic=HOSPITAL, partition="0") is None
    assert value(metrics, lag, service="pathway", topic=HOSPITAL, partition="1") == 2
    metrics.consumer_lag("pathway", HOSPITAL, 1, -3)  # a stale highwater: never below 0
    assert value(metrics, lag, service="pathway", topic=HOSPITAL, partition="1") == 0


class FakeAioConsumer:
    """AIOKafkaConsumer's assignment / highwater / position."""

    def __init__(self, offsets: dict[TP, tuple[int | None, int]]) -> None:
        self.offsets = offsets

    def assignment(self) -> set[TP]:
        return set(self.offsets)

    def highwater(self, tp: TP) -> int | None:
        return self.offsets[tp][0]

    async def position(self, tp: TP) -> int:
        if tp.partition == 2:
            raise RuntimeError("partition revoked")
        return self.offsets[tp][1]


def test_aiokafka_lag_is_highwater_minus_position() -> None:
    consumer = FakeAioConsumer(
        {TP(HOSPITAL, 0): (100, 40), TP(HOSPITAL, 1): (None, 0), TP(HOSPITAL, 2): (9, 1)}
    )
    assert asyncio.run(aiokafka_lags(consumer)) == {(HOSPITAL, 0): 60}
    metrics = ServiceMetrics("pathway", Metrics())
    asyncio.run(metrics.observe_aiokafka_lag(consumer))
    lag = value(
        metrics.metrics,
        "overgang_consumer_lag_records",
        service="pathway",
        topic=HOSPITAL,
        partition="0",
    )
    assert lag == 60


class FakeFaustApp:
    """A started Faust app: consumer assignment/highwater, committed offsets."""

    def __init__(self) -> None:
        self.started = True
        changelog = TP("overgang-discharge-clocks-changelog", 0)
        self.consumer = type(
            "Consumer",
            (),
            {
                "assignment": lambda _self: {TP(HOSPITAL, 0), TP(HOSPITAL, 1), changelog},
                "highwater": lambda _self, tp: {0: 50, 1: 7}.get(tp.partition),
                "_committed_offset": {TP(HOSPITAL, 0): 20, changelog: 0},
            },
        )()
        self.monitor = type("Monitor", (), {"tp_committed_offsets": {TP(HOSPITAL, 1): 7}})()


def test_faust_lag_reads_its_topics_only() -> None:
    app = FakeFaustApp()
    assert faust_lags(app, [HOSPITAL])() == {(HOSPITAL, 0): 30, (HOSPITAL, 1): 0}
    app.started = False  # before start: nothing, and no consumer created
    assert faust_lags(app, [HOSPITAL])() == {}
    app.started = True
    metrics = ServiceMetrics("discharge", Metrics())
    metrics.watch_faust_lag(app, [HOSPITAL])
    lag = value(
        metrics.metrics,
        "overgang_consumer_lag_records",
        service="discharge",
        topic=HOSPITAL,
        partition="0",
    )
    assert lag == 30


def test_on_loop_reads_on_the_loops_thread() -> None:
    seen: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        read = on_loop(loop, lambda: seen.append(threading.get_ident()) or 1)
        assert read() == 1  # called on the loop itself: directly
        assert await asyncio.to_thread(read) == 1  # from a scrape thread: on the loop
        seen.append(threading.get_ident())

    asyncio.run(main())
    assert len(set(seen)) == 1


def test_a_lag_probe_never_stops_the_consumer() -> None:
    class Bare:  # no highwater(): e.g. a test double, or a client change
        def assignment(self) -> set[TP]:
            return {TP(HOSPITAL, 0)}

    class Broken:
        def assignment(self) -> set[TP]:
            raise RuntimeError("not subscribed")

    assert asyncio.run(aiokafka_lags(Bare())) == {}
    assert asyncio.run(aiokafka_lags(Broken())) == {}


def test_a_counting_bug_never_fails_what_it_counts() -> None:
    metrics = Metrics()

    class Odd:  # days whose amount is no number
        municipality, day, reversed = "1103", None, ()
        added = (type("Day", (), {"date": dt.date(2024, 1, 1), "amount_nok": "many"})(),)

    metrics.liability_announced("discharge", Odd())  # type: ignore[arg-type]
    metrics.consumer_lag("pathway", HOSPITAL, 0, "x")  # type: ignore[arg-type]
