"""Shared pytest fixtures. Keep sections separated; add new fixtures below the Kafka block."""

# --- Kafka (real broker: env var, testcontainers, or infra/kafka/kafka.sh) -- see kafka_fixture.py
# --- end Kafka
# --- Topic layout shared by every test process: topics are created once per broker, so all
# tests (and the service processes they start) must agree on the partition count.
import os
from pathlib import Path

os.environ.setdefault("OVERGANG_TOPIC_PARTITIONS", "3")
# --- end topic layout
# --- The tests' own local broker: another port and data directory than `overgang up` and
# `make demo`, so a developer's stack never sees the tests' 3-partition topics (and the
# other way round). Set before kafka_fixture reads them.
os.environ.setdefault("KAFKA_PORT", "19392")
os.environ.setdefault(
    "OVERGANG_KAFKA_DATA", str(Path(__file__).resolve().parent.parent / ".kafka-test")
)
# --- end test broker
# In-process and test-started services export no metrics port unless a test asks: they
# must not compete for 9461-9463 with a developer's `overgang up`.
for _name in ("PATHWAY_METRICS_ADDR", "COORDINATION_METRICS_ADDR", "DISCHARGE_METRICS_ADDR"):
    os.environ.setdefault(_name, "off")

from kafka_fixture import (  # noqa: E402, F401
    broker_identity,
    kafka_bootstrap,
    same_broker,
    unique_name,
)
