"""What the corpus test reads back: the dead-letter topic by source offset, the consumer
groups' committed offsets, and what the services' databases recorded."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from overgang.kafka.records import header, headers_of, reason_of
from overgang.kafka.topics import DEAD_LETTER

# (service, source topic, partition, offset)
Source = tuple[str, str, int, int]


@dataclass
class DeadLetters:
    """Every dead letter read so far, by its source; `read_to_end` catches up."""

    bootstrap: str
    reasons: dict[Source, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
        self._partition = TopicPartition(DEAD_LETTER, 0)
        self._consumer.assign([self._partition])
        self._consumer.seek_to_beginning(self._partition)

    def read_to_end(self) -> None:
        end = self._consumer.end_offsets([self._partition])[self._partition]
        while self._consumer.position(self._partition) < end:
            for records in self._consumer.poll(timeout_ms=1000).values():
                for message in records:
                    self._add(headers_of(message.headers))

    def _add(self, headers: list[tuple[str, bytes]]) -> None:
        values = [
            header(headers, name)
            for name in ("dlq.service", "dlq.source.topic", "dlq.source.partition")
        ]
        offset = header(headers, "dlq.source.offset")
        if None in values or offset is None:
            return
        service, topic, partition = (v.decode() for v in values if v is not None)
        source = (service, topic, int(partition), int(offset))
        self.reasons.setdefault(source, []).append(reason_of(headers) or "")

    def close(self) -> None:
        self._consumer.close()


def committed(bootstrap: str, groups: dict[str, str]) -> dict[str, dict[tuple[str, int], int]]:
    """Per service, the committed offset of each (topic, partition) of its group."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        by_group = admin.list_group_offsets({group: None for group in groups.values()})
        return {
            service: {
                (tp.topic, tp.partition): meta.offset
                for tp, meta in by_group.get(group, {}).items()
            }
            for service, group in groups.items()
        }
    finally:
        admin.close()


def recorded(data_dir: Path) -> dict[str, set[str]]:
    """Ids the services' databases hold: pathway events and tasks, coordination's
    processed pathway events (the databases are read-only here)."""
    queries = {
        "pathway-events": ("pathway.db", "SELECT event_id FROM pathway_event_log"),
        "pathway-tasks": ("pathway.db", "SELECT task_id FROM pathway_task"),
        "coordination": ("coordination.db", "SELECT event_id FROM coordination_processed_events"),
    }
    found: dict[str, set[str]] = {}
    for name, (database, query) in queries.items():
        path = data_dir / database
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
                found[name] = {row[0] for row in connection.execute(query)}
        except sqlite3.Error:
            found[name] = set()  # not created yet
    return found
