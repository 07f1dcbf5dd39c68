"""Topic names and their declared configuration (`topics.toml` beside this module, shipped
as package data; `infra/kafka/topics.toml` links to it)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError, TopicAuthorizationFailedError
from kafka.partitioner.default import murmur2

from overgang.config import Settings
from overgang.events import MUNICIPAL_KINDS, EpisodeEvent
from overgang.kafka.security import kafka_python_security
from overgang.logging import get_logger

log = get_logger(__name__)

HOSPITAL_EVENTS = "overgang.hospital-events.v1"
MUNICIPAL_EVENTS = "overgang.municipal-events.v1"
PATHWAY_EVENTS = "overgang.pathway-events.v1"
COORDINATION_TASKS = "overgang.coordination-tasks.v1"
LIABILITY_EVENTS = "overgang.liability-events.v1"
CLOCK_TICKS = "overgang.clock-ticks.v1"
DEAD_LETTER = "overgang.dead-letter.v1"

TOPICS_FILE = Path(__file__).with_name("topics.toml")


def default_partition(key: str, partitions: int) -> int:
    """The partition the default (murmur2) partitioner gives a record keyed `key`: where an
    episode's events, and so its clock, live."""
    return int((murmur2(key.encode()) & 0x7FFFFFFF) % partitions)


def topic_for(event: EpisodeEvent) -> str:
    """The topic an episode event belongs on: municipal answers apart from hospital events."""
    return MUNICIPAL_EVENTS if event.kind in MUNICIPAL_KINDS else HOSPITAL_EVENTS


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


def declared_topics(settings: Settings, path: Path = TOPICS_FILE) -> list[TopicSpec]:
    with path.open("rb") as handle:
        declared = tomllib.load(handle)["topics"]
    specs = []
    for name, body in declared.items():
        rf = int(body.get("replication_factor", settings.replication_factor))
        config = {k: str(v) for k, v in body.get("config", {}).items()}
        if config.get("min.insync.replicas") == "auto":
            # One fewer than the replicas: a single broker may fail without stopping writes.
            config["min.insync.replicas"] = str(max(1, rf - 1))
        specs.append(
            TopicSpec(
                name=name,
                partitions=int(body.get("partitions", settings.topic_partitions)),
                replication_factor=rf,
                config=config,
            )
        )
    return specs


def admin_client(settings: Settings, client_id: str = "overgang-topics") -> KafkaAdminClient:
    """A kafka-python admin client with the settings' TLS/SASL (close it when done)."""
    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=client_id,
        **kafka_python_security(settings),
    )


def ensure_topics(settings: Settings, names: list[str] | None = None) -> list[str]:
    """Create the declared topics that do not exist yet; returns those created."""
    specs = [s for s in declared_topics(settings) if names is None or s.name in names]
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        created = []
        for spec in missing:
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            name=spec.name,
                            num_partitions=spec.partitions,
                            replication_factor=spec.replication_factor,
                            topic_configs=spec.config,
                        )
                    ]
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass  # another service won the race: fine
            except TopicAuthorizationFailedError:
                # With ACLs a service may create only its own topics; the others are
                # another principal's (or ops') to create.
                log.warning("topics.create_not_authorized", topic=spec.name)
        return created
    finally:
        admin.close()


def partition_counts(settings: Settings, names: list[str]) -> dict[str, int]:
    """Partitions of existing topics (missing topics are left out)."""
    admin = admin_client(settings)
    try:
        described = admin.describe_topics(names)
        return {t["name"]: len(t["partitions"]) for t in described if not t.get("error_code")}
    finally:
        admin.close()


class CoPartitioningError(RuntimeError):
    pass


def require_co_partitioned(settings: Settings, names: list[str]) -> None:
    """Topics feeding one keyed stream must have the same partition count, or one
    episode's events would land in different partitions of the clock table."""
    counts = partition_counts(settings, names)
    if len(set(counts.values())) > 1 or set(counts.values()) - {settings.topic_partitions}:
        raise CoPartitioningError(
            f"topics must all have {settings.topic_partitions} partitions "
            f"(OVERGANG_TOPIC_PARTITIONS), found {counts}"
        )
