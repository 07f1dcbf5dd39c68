"""The Faust wiring, kept thin: one agent on overgang.pathway-events.v1 and the SLA
timer, both only calling the worker. The agent awaits the worker for each event, and the
worker returns only once the event is applied or dead-lettered, so an outage holds the
stream (and its offsets) instead of acknowledging an event that was not processed."""

from __future__ import annotations

from typing import Any

import faust

from coordination.worker import SERVICE, CoordinationWorker
from overgang.config import Settings
from overgang.kafka.delivery_watch import watch_delivery
from overgang.kafka.security import faust_app_options
from overgang.kafka.topics import PATHWAY_EVENTS
from overgang.metrics import process_metrics

APP_ID = "overgang-coordination"
DEFAULT_SLA_SECONDS = 60.0


def create_app(
    settings: Settings,
    worker: CoordinationWorker,
    *,
    app_id: str = APP_ID,
    sla_seconds: float = DEFAULT_SLA_SECONDS,
) -> Any:
    """A Faust app bound to `worker`. Start it in-process with `await app.start()` and stop
    it with `await app.stop()` (no Worker: signals and shutdown belong to the caller)."""
    app = faust.App(
        app_id,
        **faust_app_options(settings),  # broker and its TLS/SASL credentials
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        autodiscover=False,
        topic_replication_factor=settings.replication_factor,
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
    )
    pathway_events = app.topic(
        PATHWAY_EVENTS,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    delivery = watch_delivery(app, SERVICE)

    @app.agent(pathway_events, name="coordination-pathway-events")  # type: ignore[untyped-decorator]
    async def on_pathway_events(stream: Any) -> None:
        metrics = process_metrics()
        async for event in stream.events():
            if not await delivery.admit(event.message):
                continue  # sought back to a record faust lost: this one comes again
            metrics.record_in(SERVICE, event.message.topic)
            await worker.handle_record(event.message)
            metrics.record_processed(SERVICE, event.message.topic)

    @app.timer(sla_seconds, on_leader=True)  # type: ignore[untyped-decorator]
    async def escalate_overdue() -> None:
        await worker.sla_tick()

    return app
