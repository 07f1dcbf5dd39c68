"""Kafka adapters shared by the services."""
