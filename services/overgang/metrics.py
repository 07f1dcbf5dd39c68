"""Prometheus metrics of one process: the families every service exports, and the calls
that count into them. Scrape-time gauges (backlogs, stages, tasks, lag read from a Faust
consumer) are in `overgang.metrics_watch`; the gRPC interceptor in `overgang.metrics_grpc`.

One `CollectorRegistry` per process, not prometheus_client's global default:
`process_metrics()` is the process's, `Metrics()` a fresh one (tests make several, and
`use_metrics` swaps the process's for the length of a test).

Labels are bounded sets only: service, topic, partition, reason class, stage, unit,
municipality (kommunenummer), division, year, gRPC method and code. Never a national id, an
episode id or free text: every label value goes through `label()`, which turns anything
that looks like an id, or is not a short plain token, into "invalid".

Counters count what this process did since it started (at least once: a repeat after a
crash counts again); Prometheus' `rate()`/`increase()` handle restarts. They are for
trends and alerts; the amounts to reconcile are the statements. The notice-to-answer
histogram is at most once per period (observed after the clock's state is durable; a
crash in between loses the observation, a redelivery finds the answer already counted):
`overgang sla` gives the figure to report.
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import wraps
from typing import ParamSpec, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)

from overgang.logging import get_logger
from overgang.metrics_scrape import Read, ScrapedGauges, label, municipality_label

log = get_logger(__name__)
P = ParamSpec("P")

# `*_created` series double every counter and histogram for no dashboard's benefit.
disable_created_metrics()  # type: ignore[no-untyped-call]

REASON_CLASSES = ("decode", "key", "topic", "rule", "processing", "other")
GRPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_HOUR, _DAY = 3600, 86_400
# The municipality should answer the same day: hours first, then days up to a month.
ANSWER_BUCKETS = (
    _HOUR,
    3 * _HOUR,
    6 * _HOUR,
    12 * _HOUR,
    _DAY,
    2 * _DAY,
    3 * _DAY,
    5 * _DAY,
    7 * _DAY,
    14 * _DAY,
    30 * _DAY,
)
__all__ = ["REASON_CLASSES", "Metrics", "label", "municipality_label", "process_metrics"]


def _never_raises(count: Callable[P, None]) -> Callable[P, None]:
    """A counting call never fails what it counts (a record, an announcement, a call):
    a bug in it is logged and the count lost."""

    @wraps(count)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            count(*args, **kwargs)
        except Exception as exc:
            log.error("metrics.count_failed", call=count.__name__, error=repr(exc)[:200])

    return guarded


class DayLike(Protocol):
    """A liable day as the clock announces it (`discharge`'s LiableDay)."""

    @property
    def date(self) -> object: ...  # a datetime.date: only its `year` is read

    @property
    def amount_nok(self) -> int | None: ...  # None: rate-pending


class ChangeLike(Protocol):
    """An announced liability change (`discharge`'s LiabilityChange): a day accrued
    (`day`), or a correction (`added`, `reversed`); period changes carry no days."""

    @property
    def municipality(self) -> str: ...

    @property
    def day(self) -> DayLike | None: ...

    @property
    def added(self) -> Sequence[DayLike]: ...

    @property
    def reversed(self) -> Sequence[DayLike]: ...


class Metrics:
    """The process's metric families, and the calls the services make per event."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        counter, gauges = self._counter, self._gauges
        topic, place, rpc = (
            ["service", "topic"],
            ["service", "municipality", "year"],
            ["method", "code"],
        )
        self.records_in = counter(
            "overgang_records_in", "Records consumed (a redelivery counts again)", topic
        )
        self.records_processed = counter(
            "overgang_records_processed",
            "Records finished: applied, duplicate or dead-lettered (the consumer moved on)",
            topic,
        )
        self.dead_letters = counter(
            "overgang_records_dead_lettered",
            "Records sent to the dead-letter topic, by reason class",
            [*topic, "reason_class"],
        )
        self.lag = gauges(
            ("overgang_consumer_lag_records", "End offset - position", ["topic", "partition"])
        )
        self.outbox = gauges(("overgang_outbox_backlog_rows", "Outbox rows not yet published", []))
        self.pathways = gauges(("overgang_pathways", "Pathways by stage", ["stage"]))
        self.running_clocks = gauges(
            ("overgang_running_clocks", "Running liability periods, by payer", ["municipality"])
        )
        self.disputes = gauges(
            (
                "overgang_disputes",
                "Disputes of liable days, by payer and state (OPEN, ACCEPTED, REJECTED)",
                ["municipality", "state"],
            )
        )
        unit = ["municipality", "unit"]
        self.tasks = gauges(
            ("overgang_tasks_open", "Open or claimed tasks", unit),
            ("overgang_tasks_overdue", "Open or claimed tasks past their due time", unit),
            ("overgang_tasks_escalated", "Open or claimed tasks escalated to the lead", unit),
        )
        self.liable_days = counter(
            "overgang_liable_days", "Liable days announced, rate-pending ones included", place
        )
        self.liable_nok = counter("overgang_liable_nok", "NOK announced (priced days)", place)
        self.pending_days = counter(
            "overgang_rate_pending_days", "Liable days announced whose year has no rate", place
        )
        self.reversed_days = counter(
            "overgang_reversed_liable_days", "Liable days reversed by corrections", place
        )
        self.reversed_nok = counter("overgang_reversed_liable_nok", "NOK reversed", place)
        self.reversed_pending_days = counter(
            "overgang_reversed_rate_pending_days", "Rate-pending days reversed (priced)", place
        )
        self.notice_to_answer = Histogram(
            "overgang_notice_to_answer_seconds",
            "Event time from a discharge-ready notice to the municipality's first answer to "
            "it, observed once per liability period when the clock first counts the answer",
            ["service", "municipality", "division"],
            buckets=ANSWER_BUCKETS,
            registry=self.registry,
        )
        self.grpc_requests = counter("overgang_grpc_requests", "gRPC calls handled", rpc)
        self.grpc_seconds = Histogram(
            "overgang_grpc_request_duration_seconds",
            "Handling time of unary-response gRPC calls (a stream's lifetime is no latency)",
            rpc,
            buckets=GRPC_BUCKETS,
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, memory, fds
        self._seen_topics: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._lags: dict[str, dict[tuple[str, int], int]] = {}
        self._lag_sources: dict[str, Callable[[], None]] = {}

    def _counter(self, name: str, doc: str, labels: Sequence[str]) -> Counter:
        return Counter(name + "_total", doc, labels, registry=self.registry)

    def _gauges(self, *families: tuple[str, str, Sequence[str]]) -> ScrapedGauges:
        gauges = ScrapedGauges(families)
        self.registry.register(gauges)
        return gauges

    # -------------------------------------------------------------------- records
    @_never_raises
    def record_in(self, service: str, topic: str) -> None:
        service, topic = label(service), label(topic)
        if (service, topic) not in self._seen_topics:
            # Every series of the topic from 0, so rate() sees the first dead letter.
            self._seen_topics.add((service, topic))
            self.records_processed.labels(service, topic)
            for reason_class in REASON_CLASSES:
                self.dead_letters.labels(service, topic, reason_class)
        self.records_in.labels(service, topic).inc()

    @_never_raises
    def record_processed(self, service: str, topic: str) -> None:
        self.records_processed.labels(label(service), label(topic)).inc()

    @_never_raises
    def dead_lettered(self, service: str, topic: str, reason_class: str) -> None:
        kind = reason_class if reason_class in REASON_CLASSES else "other"
        self.dead_letters.labels(label(service), label(topic), kind).inc()

    @_never_raises
    def consumer_lag(self, service: str, topic: str, partition: int, lag: int) -> None:
        """One partition's lag as the consumer sees it (`metrics_watch` has helpers that
        read it from aiokafka and Faust consumers)."""
        with self._lock:
            self._pushed(service)[(topic, int(partition))] = max(int(lag), 0)

    @_never_raises
    def consumer_lags(self, service: str, lags: Mapping[tuple[str, int], int]) -> None:
        """All of the service's partitions at once: revoked ones disappear."""
        with self._lock:
            pushed = self._pushed(service)
            pushed.clear()
            pushed.update({(t, int(p)): max(int(n), 0) for (t, p), n in lags.items()})

    def forget_lags(self, service: str) -> None:
        with self._lock:
            self._lags.pop(service, None)
            remove = self._lag_sources.pop(service, None)
        if remove is not None:
            remove()

    def _pushed(self, service: str) -> dict[tuple[str, int], int]:
        if service not in self._lags:
            lags = self._lags[service] = {}

            def read() -> list[list[tuple[tuple[str, int], float]]]:
                with self._lock:
                    return [[(tp, float(n)) for tp, n in sorted(lags.items())]]

            self._lag_sources[service] = self.lag.add(service, read)
        return self._lags[service]

    def watch(self, gauges: ScrapedGauges, service: str, read: Read) -> Callable[[], None]:
        """Register a scrape-time source (`metrics_watch.ServiceMetrics` wraps this)."""
        return gauges.add(service, read)

    # ------------------------------------------------------------------ liability
    @_never_raises
    def liability_announced(self, service: str, change: ChangeLike) -> None:
        """The discharge worker's call per announced change, once it is acknowledged."""
        added = [change.day] if change.day is not None else list(change.added)
        municipality = municipality_label(change.municipality)
        self._days(service, municipality, added, reverse=False)
        self._days(service, municipality, change.reversed, reverse=True)

    def _days(
        self, service: str, municipality: str, days: Iterable[DayLike], *, reverse: bool
    ) -> None:
        # days, nok, pending by year; labelled once per year, not per day
        counted: dict[object, list[int]] = defaultdict(lambda: [0, 0, 0])
        for day in days:
            figures = counted[getattr(day.date, "year", "")]
            figures[0] += 1
            if day.amount_nok is None:
                figures[2] += 1
            else:
                figures[1] += day.amount_nok
        families = (
            (self.reversed_days, self.reversed_nok, self.reversed_pending_days)
            if reverse
            else (self.liable_days, self.liable_nok, self.pending_days)
        )
        for year, figures in counted.items():
            names = (label(service), municipality, label(year))
            for family in self._place_families():  # announced and reversed from 0
                family.labels(*names)
            for family, amount in zip(families, figures, strict=True):
                family.labels(*names).inc(amount)

    def _place_families(self) -> tuple[Counter, ...]:
        return (
            self.liable_days,
            self.liable_nok,
            self.pending_days,
            self.reversed_days,
            self.reversed_nok,
            self.reversed_pending_days,
        )

    @_never_raises
    def notice_answered(
        self, service: str, municipality: str, division: str, seconds: float
    ) -> None:
        """A liability period's first answer (the discharge worker, once it is recorded)."""
        names = (label(service), municipality_label(municipality), label(division))
        self.notice_to_answer.labels(*names).observe(max(seconds, 0.0))

    # ----------------------------------------------------------------------- gRPC
    @_never_raises
    def grpc_handled(self, method: str, code: str, seconds: float | None) -> None:
        """`seconds`: None for a streamed response (counted, not timed)."""
        names = (label(method), label(code))
        self.grpc_requests.labels(*names).inc()
        if seconds is not None:
            self.grpc_seconds.labels(*names).observe(seconds)


_lock = threading.Lock()
_process: Metrics | None = None


def process_metrics() -> Metrics:
    """The process's metrics (created on first use)."""
    global _process
    with _lock:
        if _process is None:
            _process = Metrics()
        return _process


@contextlib.contextmanager
def use_metrics(metrics: Metrics) -> Iterator[Metrics]:
    """Make `metrics` the process's for a while (tests)."""
    global _process
    with _lock:
        previous, _process = _process, metrics
    try:
        yield metrics
    finally:
        with _lock:
            _process = previous
