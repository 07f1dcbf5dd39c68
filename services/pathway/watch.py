"""In-process fan-out of PathwayEvents to WatchPathways subscribers.

Each subscriber has a bounded queue; one that falls too far behind is dropped (its
stream ends with RESOURCE_EXHAUSTED) rather than slowing down intake.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from overgang.v1 import pathway_pb2

Predicate = Callable[[pathway_pb2.PathwayEvent], bool]


@dataclass(eq=False)
class Subscription:
    accepts: Predicate
    queue: asyncio.Queue[pathway_pb2.PathwayEvent | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=1000)
    )
    overflowed: bool = False


class Broadcaster:
    def __init__(self, fed: bool = False) -> None:
        """`fed`: a `WatchFeed` publishes every replica's events from the topic, so what
        this replica records is not published again directly (`publish_local`)."""
        self._subscriptions: set[Subscription] = set()
        self.fed = fed

    def subscribe(self, accepts: Predicate) -> Subscription:
        subscription = Subscription(accepts)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def publish_local(self, events: Iterable[pathway_pb2.PathwayEvent]) -> None:
        """What this replica just recorded (without Kafka, the only source)."""
        if not self.fed:
            self.publish(events)

    def publish(self, events: Iterable[pathway_pb2.PathwayEvent]) -> None:
        """Call on the event loop's thread."""
        for event in events:
            for subscription in list(self._subscriptions):
                if not subscription.accepts(event):
                    continue
                try:
                    subscription.queue.put_nowait(event)
                except asyncio.QueueFull:
                    subscription.overflowed = True
                    self._subscriptions.discard(subscription)
                    subscription.queue.get_nowait()  # make room for the end marker
                    subscription.queue.put_nowait(None)

    def close(self) -> None:
        """End every stream (server shutdown)."""
        for subscription in list(self._subscriptions):
            self._subscriptions.discard(subscription)
            try:
                subscription.queue.put_nowait(None)
            except asyncio.QueueFull:
                subscription.queue.get_nowait()
                subscription.queue.put_nowait(None)
