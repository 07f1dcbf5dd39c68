"""One service's metrics wiring: the gauges read at scrape time (outbox backlog, pathways
by stage, running clocks, tasks per unit, Faust consumer lag), the aiokafka lag probe,
and the HTTP `/metrics` server; `ServiceMetrics.close()` undoes it all.

Scrape-time reads run in the HTTP server's thread: SQL reads use the engine's pool as any
thread does; state owned by the event loop (a Faust table) is read through `on_loop`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from sqlalchemy import Engine, func, select
from sqlmodel import col

from overgang.config import host_of, is_loopback
from overgang.logging import get_logger
from overgang.metrics import Metrics, process_metrics
from overgang.metrics_scrape import ScrapedGauges, label, municipality_label
from overgang.sql.outbox import OutboxRow

log = get_logger(__name__)
T = TypeVar("T")
OFF = ("", "off")


class UnitTasks(NamedTuple):
    open: int
    overdue: int
    escalated: int


def count_by(
    engine: Engine, *columns: Any, where: Sequence[Any] = ()
) -> dict[tuple[str, ...], int]:
    """`SELECT columns, count(*) ... WHERE where GROUP BY columns` as {values: count}."""
    query = select(*columns, func.count()).where(*where).group_by(*columns)
    with engine.connect() as connection:
        return {tuple(str(v) for v in row[:-1]): int(row[-1]) for row in connection.execute(query)}


def outbox_backlog(engine: Engine) -> int:
    """Outbox rows not yet published."""
    query = select(func.count()).select_from(OutboxRow).where(col(OutboxRow.published_at).is_(None))
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def on_loop(
    loop: asyncio.AbstractEventLoop, read: Callable[[], T], timeout: float = 2.0
) -> Callable[[], T]:
    """`read`, run on `loop`'s thread (state only the loop may touch); a loop too busy
    to answer within `timeout` fails that scrape's read."""

    async def call() -> T:
        return read()

    def run() -> T:
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is loop:
                return read()
        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout)

    return run


def faust_lags(app: Any, topics: Iterable[str]) -> Callable[[], dict[tuple[str, int], int]]:
    """Lag of a Faust app's assigned partitions of `topics` (not its changelogs, whose
    offsets only move during recovery): highwater - committed offset. The committed
    offsets are the monitor's (after each commit), else those read at assignment."""
    wanted = frozenset(topics)

    def read() -> dict[tuple[str, int], int]:
        if not app.started:  # `app.consumer` would create a consumer
            return {}
        consumer = app.consumer
        committed = dict(getattr(consumer, "_committed_offset", {}))
        committed.update(app.monitor.tp_committed_offsets or {})
        lags: dict[tuple[str, int], int] = {}
        for tp in list(consumer.assignment()):
            if tp.topic not in wanted:
                continue
            high, done = consumer.highwater(tp), committed.get(tp)
            if high is not None and done is not None:
                lags[(tp.topic, tp.partition)] = max(int(high) - int(done), 0)
        return lags

    return read


async def aiokafka_lags(consumer: Any, timeout: float = 1.0) -> dict[tuple[str, int], int]:
    """Lag of an AIOKafkaConsumer's assigned partitions: highwater - position (call it
    after the records fetched were handled). Partitions not fetched yet, or revoked
    meanwhile, are left out; it never raises (a probe must not stop the consumer)."""
    lags: dict[tuple[str, int], int] = {}
    try:
        assigned = list(consumer.assignment())
    except Exception as exc:
        log.debug("metrics.lag_unavailable", error=repr(exc))
        return lags
    for tp in assigned:
        try:
            high = consumer.highwater(tp)
            if high is not None:
                position = await asyncio.wait_for(consumer.position(tp), timeout)
                lags[(tp.topic, tp.partition)] = max(int(high) - int(position), 0)
        except Exception as exc:  # TimeoutError included
            log.debug("metrics.lag_unavailable", partition=tp.partition, error=repr(exc))
    return lags


class MetricsServer:
    """The HTTP server Prometheus scrapes (`/metrics`), on a daemon thread."""

    def __init__(self, httpd: WSGIServer, address: str) -> None:
        self.httpd = httpd
        self.address = address
        self.port = int(httpd.server_port)

    def stop(self) -> None:
        self.httpd.shutdown()  # returns within the serve loop's 0.5 s poll
        self.httpd.server_close()
        log.info("metrics.stopped", address=self.address)


def parse_address(address: str) -> tuple[str, int]:
    """ "host:port" or "[v6]:port" -> (host, port); a ValueError names the address."""
    host, _, port = address.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"metrics address {address!r}: expected host:port, '' or off")
    return host_of(address), int(port)


def serve_metrics(address: str, metrics: Metrics | None = None) -> MetricsServer | None:
    """Serve the registry on `address` ("" or "off": no server). A port that cannot be
    bound is logged as an error and the service goes on without metrics (Prometheus
    then reports the target down); a malformed address raises."""
    if address.strip().lower() in OFF:
        log.info("metrics.off")
        return None
    host, port = parse_address(address)
    if not is_loopback(address):
        log.warning("metrics.exposed", address=address, detail="/metrics has no auth")
    registry = (metrics or process_metrics()).registry
    try:
        httpd, _thread = start_http_server(port, host, registry=registry)
    except OSError as exc:
        log.error("metrics.unavailable", address=address, error=str(exc))
        return None
    server = MetricsServer(httpd, address)
    log.info("metrics.started", address=address, port=server.port)
    return server


class ServiceMetrics:
    """A service's sources and server: `watch_*` at start-up, `serve`, `close` at stop."""

    def __init__(self, service: str, metrics: Metrics | None = None) -> None:
        self.service = service
        self.metrics = metrics or process_metrics()
        self.server: MetricsServer | None = None
        self._removers: list[Callable[[], None]] = []

    def _add(self, gauges: ScrapedGauges, read: Callable[[], Any]) -> None:
        self._removers.append(self.metrics.watch(gauges, self.service, read))

    def watch_outbox(self, engine: Engine) -> None:
        self._add(self.metrics.outbox, lambda: [[((), outbox_backlog(engine))]])

    def watch_pathways(self, stages: Callable[[], Mapping[str, int]]) -> None:
        """`stages`: {stage: pathways}."""
        self._add(self.metrics.pathways, lambda: [[((s,), n) for s, n in stages().items()]])

    def watch_running_clocks(self, clocks: Callable[[], Mapping[str, int]]) -> None:
        """`clocks`: {payer kommunenummer: episodes with a running period}."""

        def read() -> list[list[tuple[tuple[str], int]]]:
            return [[((municipality_label(m),), n) for m, n in clocks().items()]]

        self._add(self.metrics.running_clocks, read)

    def watch_disputes(self, disputes: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        """`disputes`: {(payer kommunenummer, state): disputes} (a shared table, so each
        worker reports the same counts: aggregate with max, not sum)."""

        def read() -> list[list[tuple[tuple[str, str], int]]]:
            return [[((municipality_label(m), label(s)), n) for (m, s), n in disputes().items()]]

        self._add(self.metrics.disputes, read)

    def watch_tasks(self, tasks: Callable[[], Mapping[tuple[str, ...], UnitTasks]]) -> None:
        """`tasks`: {(kommunenummer, unit): UnitTasks} (e.g. from `count_by`)."""

        def read() -> list[list[tuple[tuple[str, str], int]]]:
            counts = [((municipality_label(m), u), t) for (m, u), t in tasks().items()]
            return [[(key, t[i]) for key, t in counts] for i in range(3)]

        self._add(self.metrics.tasks, read)

    def watch_faust_lag(self, app: Any, topics: Iterable[str]) -> None:
        lags = faust_lags(app, topics)
        self._add(self.metrics.lag, lambda: [[((t, p), n) for (t, p), n in lags().items()]])

    async def observe_aiokafka_lag(self, consumer: Any) -> None:
        self.metrics.consumer_lags(self.service, await aiokafka_lags(consumer))

    def serve(self, address: str) -> MetricsServer | None:
        self.server = serve_metrics(address, self.metrics)
        return self.server

    def close(self) -> None:
        for remove in self._removers:
            remove()
        self._removers.clear()
        self.metrics.forget_lags(self.service)
        if self.server is not None:
            self.server.stop()
            self.server = None
