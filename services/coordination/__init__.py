"""Coordination service: turns pathway events into tasks for municipal units (rules in
coordination.domain), keeps them in SQL, escalates overdue ones, streams them over
gRPC and publishes the municipality's answers as events."""
