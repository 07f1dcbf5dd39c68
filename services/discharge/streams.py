"""The clock's Faust wiring, kept thin: one agent over hospital events, municipal events
and day ticks, a changelog-backed `clocks` table, and the tick senders.

The three source topics have the same partition count and are keyed by episode id, so
one episode's events and the ticks for its partition arrive in one ordered stream, and
the table holds each episode's history in the partition it came from. A leader-only
crontab at 00:00 Europe/Oslo, and every worker at start-up and every few minutes, send
today's date to every tick partition; a tick recomputes each episode of its partition as
of that date, so days missed while a worker was down are caught up.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust

from discharge.corrections_store import CorrectionLog
from discharge.domain.live_clock import Rules
from discharge.domain.rates import RateTable
from discharge.faust_recovery import ClockTableManager
from discharge.peers import advertised_url
from discharge.store import ClockArchive
from discharge.table import ClockTable
from discharge.worker import SERVICE, ClockWorker
from overgang.codec import CONTENT_TYPE_JSON
from overgang.config import Settings
from overgang.events import OSLO
from overgang.kafka import topics
from overgang.kafka.delivery_watch import watch_delivery
from overgang.kafka.records import Headers
from overgang.kafka.security import faust_app_options
from overgang.metrics import process_metrics
from overgang.plausibility import load_windows

APP_ID = "overgang-discharge"
CATCH_UP_SECONDS = 300.0
UNSENT_SWEEP_SECONDS = 10.0
# At most this many records per batch, and a record waits at most this long for others.
BATCH_MAX = 500
BATCH_WITHIN_SECONDS = 0.02
RAW = {"key_serializer": "raw", "value_serializer": "raw"}


@dataclass
class ClockStreams:
    app: faust.App
    store: ClockTable
    worker: ClockWorker
    settings: Settings
    changelog_topic: str

    def partition_of(self, episode_id: str) -> int:
        """The partition the default (murmur2) partitioner gives the episode's key."""
        return topics.default_partition(episode_id, self.settings.topic_partitions)

    def served_partitions(self) -> set[int]:
        """The partitions this worker is active for, once their table state is restored:
        none while a rebalance (and the changelog recovery after it) is in progress.

        The local table may still hold clocks of partitions that moved to another worker:
        faust's in-memory store drops a revoked partition's keys only if it read them from
        the changelog, not those this worker wrote itself. Those copies stop changing when
        the partition leaves, so they must never be served."""
        return active_partitions(self.app)

    def owns(self, episode_id: str) -> bool:
        """Whether this worker serves the episode's partition (see `served_partitions`)."""
        return self.partition_of(episode_id) in self.served_partitions()


def active_partitions(app: faust.App) -> set[int]:
    """The clock partitions the app is active for; none while it rebalances."""
    if app.rebalancing:
        return set()
    return {
        tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topics.HOSPITAL_EVENTS
    }


def _datadir(settings: Settings) -> str:
    path = settings.data_dir / "faust"
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


def create_streams(
    settings: Settings,
    rules: Rules,
    now: Callable[[], dt.datetime],
    reload: Callable[[], RateTable | None] | None = None,
    archive: ClockArchive | None = None,
) -> ClockStreams:
    app = faust.App(
        APP_ID + settings.app_id_suffix,
        **faust_app_options(settings),
        store="memory://",
        # The assignor shares each worker's canonical URL: peers forward statement
        # queries for the partitions a worker owns to its gRPC address (peers.py).
        canonical_url=advertised_url(settings.discharge_advertised),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.replication_factor,
        timezone=OSLO,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
        producer_acks=-1,
        table_standby_replicas=0,
        datadir=_datadir(settings),
        # Not faust's own: a fix for a recovery race that loses input events on hand-over.
        TableManager=ClockTableManager,
        **RAW,
    )
    source = app.topic(topics.HOSPITAL_EVENTS, topics.MUNICIPAL_EVENTS, topics.CLOCK_TICKS, **RAW)
    ticks = app.topic(topics.CLOCK_TICKS, **RAW)
    liability = app.topic(topics.LIABILITY_EVENTS, **RAW)
    dlq = app.topic(topics.DEAD_LETTER, **RAW)
    table = app.Table(
        "clocks",
        default=None,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
        partitions=settings.topic_partitions,
    )

    async def announce(episode_id: str, values: Sequence[bytes]) -> None:
        key = episode_id.encode()
        futures = [await liability.send(key=key, value=value) for value in values]
        await asyncio.gather(*futures)

    async def dead_letter(key: bytes | None, value: bytes | None, headers: Headers) -> None:
        await (await dlq.send(key=key, value=value, headers=headers))

    def changelog(partition: int, key: str, value: dict[str, Any] | None) -> Any:
        # The table's write, done by hand so that it can be awaited (faust's own
        # `table[key] = value` drops the changelog send's future) and done outside the
        # agent (the unsent sweep): the store and then its changelog record.
        if value is None:
            table.data.pop(key, None)
            return table.send_changelog(partition, key, None, value_serializer="raw")
        table.data[key] = value
        return table.send_changelog(partition, key, value)

    store = ClockTable(table, changelog)
    worker = ClockWorker(
        store,
        rules,
        now,
        announce,
        dead_letter,
        archive=archive,
        corrections=CorrectionLog(archive.engine) if archive is not None else None,
        retention_days=settings.clock_retention_days,
        windows=load_windows(settings.plausibility_file or None),
    )

    delivery = watch_delivery(app, SERVICE)

    @app.agent(source)
    async def clock(stream: Any) -> None:
        metrics = process_metrics()
        # Batches: one durable table write and one wait for acknowledgements per batch
        # (faust acknowledges the batch's offsets once the body is done with it).
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_SECONDS):
            # A record past one faust lost is skipped: the watch sought back, it comes again.
            records = [e.message for e in events if await delivery.admit(e.message)]
            for record in records:
                metrics.record_in(SERVICE, record.topic)
            await worker.handle_batch(records)
            for record in records:
                metrics.record_processed(SERVICE, record.topic)

    async def send_ticks() -> None:
        # Idempotent: a tick for a date already reached changes nothing.
        body = worker.tick_body()
        for partition in range(settings.topic_partitions):
            await ticks.send(
                value=body, partition=partition, headers=[("content-type", CONTENT_TYPE_JSON)]
            )

    async def reload_rates() -> None:
        # The operator's new rate table is picked up without a restart; the ticks it
        # sends make every partition re-price its clocks (announced as corrections).
        if reload is not None and worker.use_rates(reload()):
            await send_ticks()

    async def sweep_unsent() -> None:
        # What a crash left unsent in the partitions this worker took over.
        if owned := active_partitions(app):
            await worker.flush_unsent(owned)

    app.timer(interval=UNSENT_SWEEP_SECONDS)(sweep_unsent)
    app.crontab("0 0 * * *", timezone=OSLO, on_leader=True)(send_ticks)
    app.timer(interval=CATCH_UP_SECONDS)(send_ticks)
    app.timer(interval=settings.rates_poll_seconds)(reload_rates)
    app.task(send_ticks)
    return ClockStreams(app, store, worker, settings, table.changelog_topic.get_topic_name())
