"""Shared pytest fixtures. Keep sections separated; add new fixtures below the Kafka block."""

# --- Kafka (real broker: env var, testcontainers, or infra/kafka/kafka.sh) -- see kafka_fixture.py
# --- end Kafka
# --- Topic layout shared by every test process: topics are created once per broker, so all
# tests (and the service processes they start) must agree on the partition count.
import os

from kafka_fixture import kafka_bootstrap, unique_name  # noqa: F401

os.environ.setdefault("OVERGANG_TOPIC_PARTITIONS", "3")
# --- end topic layout
