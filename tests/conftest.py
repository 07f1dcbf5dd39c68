"""Shared pytest fixtures. Keep sections separated; add new fixtures below the Kafka block."""

# --- Kafka (real broker: env var, testcontainers, or infra/kafka/kafka.sh) -- see kafka_fixture.py
from kafka_fixture import kafka_bootstrap, unique_name  # noqa: F401
# --- end Kafka
