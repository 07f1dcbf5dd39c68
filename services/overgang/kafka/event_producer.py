"""Produce episode events straight to Kafka, as a hospital integration may: keyed by
episode id, protobuf binary, municipal answers on the municipal topic."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from kafka import KafkaProducer

from overgang.codec import CONTENT_TYPE_PROTO, encode_event
from overgang.config import Settings, load_settings
from overgang.events import EpisodeEvent
from overgang.kafka.security import kafka_python_security
from overgang.kafka.topics import topic_for


def produce_events(
    bootstrap: str, events: Iterable[EpisodeEvent], settings: Settings | None = None
) -> int:
    """TLS/SASL from `settings` (default: the environment's)."""
    settings = replace(settings or load_settings(), kafka_bootstrap=bootstrap)
    security = kafka_python_security(settings)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, **security)
    try:
        count = 0
        for event in events:
            producer.send(
                topic_for(event),
                key=event.episode_id.encode(),
                value=encode_event(event),
                headers=[("content-type", CONTENT_TYPE_PROTO)],
            )
            count += 1
        producer.flush(timeout=30)
        return count
    finally:
        producer.close(timeout=10)
