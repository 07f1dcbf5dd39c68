"""A real Kafka round trip: admin create (compacted topic), produce, consume in a group, commit."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka_fixture import BrokerIdentity

pytestmark = pytest.mark.kafka


def test_produce_consume_commit(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> None:
    topic, group = unique_name("it-local"), unique_name("it-group")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="it-admin")
    try:
        admin.create_topics(
            [
                NewTopic(
                    topic,
                    num_partitions=1,
                    replication_factor=1,
                    topic_configs={"cleanup.policy": "compact"},
                )
            ]
        )
        assert topic in admin.list_topics()

        # compacted topics reject records without a key
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        try:
            for i in range(3):
                producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode()).get(timeout=30)
            producer.flush()
        finally:
            producer.close()

        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=30_000,
        )
        try:
            values = []
            for record in consumer:
                values.append(record.value.decode())
                if len(values) == 3:
                    break
            assert values == ["v0", "v1", "v2"]
            consumer.commit()
            tp = TopicPartition(topic, 0)
            assert consumer.committed(tp) == 3
        finally:
            consumer.close()

        # kafka-python 3.x: list_group_offsets -> {group: {TopicPartition: OffsetAndMetadata}}
        offsets = admin.list_group_offsets(group)[group]
        assert offsets[TopicPartition(topic, 0)].offset == 3
    finally:
        try:
            admin.delete_topics([topic])
        finally:
            admin.close()


def test_a_test_run_against_another_runs_broker_fails_instead_of_sharing_its_records(
    kafka_bootstrap: str,
) -> None:
    """The session's broker guard (kafka_fixture.same_broker): a broker with another
    cluster id on the session's port fails the test."""
    identity = BrokerIdentity(kafka_bootstrap)
    identity.check("the session's own broker")  # passes
    identity.cluster_id = "another-run-s-cluster"
    with pytest.raises(pytest.fail.Exception, match="not this session's"):
        identity.check("after the port changed hands")
