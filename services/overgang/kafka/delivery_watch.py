"""Every record of an assigned source partition reaches the handler, in offset order.

faust-streaming (0.11-0.15) can lose fetched records around a rebalance: records fetched
before the hand-over sit in an agent's queue when recovery clears it, and when the
fetcher reads them again they are dropped as "already read"; a jump in fetched offsets is
taken for a compaction gap and acknowledged. Either way the handler never sees those
records, and with a gap acknowledged even a restart does not bring them back (a full
test run lost a block of one partition's events this way: tests/fault/
test_discharge_rebalance.py).

Our handlers are idempotent (an event already in the history changes nothing), so the
remedy is cheap: remember the next offset expected per partition, and when a record
arrives past it, seek back to it and skip records until it comes; when a partition has
records left (its high watermark is past the expected offset) but nothing arrived for a
while, seek back too. A partition this worker newly gets starts at its first record; one it
loses is forgotten.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from overgang.logging import get_logger

log = get_logger(__name__)

# Seek back when a partition with records left has delivered nothing for this long.
STALL_SECONDS = 30.0


class Delivered(Protocol):
    tp: Any
    topic: str
    partition: int
    offset: int


@dataclass
class _Partition:
    expected: int
    last_seen: float
    rewound_at: float | None = None  # when we sought back and are skipping until `expected`


class DeliveryWatch:
    """Checks each delivered record against the offsets expected (see module doc).

    `consumer` gives faust's consumer: `await seek(tp, offset)`, `highwater(tp)` and
    `assignment()` are what the watch uses."""

    def __init__(
        self,
        consumer: Callable[[], Any],
        service: str,
        stall_seconds: float = STALL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._consumer = consumer
        self._service = service
        self._stall = stall_seconds
        self._clock = clock
        self._partitions: dict[Any, _Partition] = {}
        self.rewinds = 0  # seeks back so far (tests and metrics read it)

    def retain(self, _sender: object, assigned: Iterable[Any], **__: object) -> None:
        """After a rebalance: keep watching the partitions this worker kept (faust seeks
        them back to the committed offset, so records come again up to where we were;
        one past it means faust lost records); forget those it lost, so one that comes
        back later starts afresh (another worker moved it on meanwhile)."""
        kept = set(assigned)
        for tp in [tp for tp in self._partitions if tp not in kept]:
            del self._partitions[tp]

    async def admit(self, record: Delivered) -> bool:
        """True: hand the record to the handler. False: skip it, it comes again (we
        sought back to an earlier record that was never delivered)."""
        now = self._clock()
        state = self._partitions.get(record.tp)
        if state is None:  # newly assigned: this worker never read it, nothing to lose
            state = _Partition(record.offset, now)
            self._partitions[record.tp] = state
        if record.offset > state.expected:
            if state.rewound_at is None or now - state.rewound_at > self._stall:
                await self._rewind(record.tp, state, now, f"got offset {record.offset}")
            return False
        # At or before the expected offset: a record again after a seek is idempotent.
        state.rewound_at = None
        state.expected = max(state.expected, record.offset + 1)
        state.last_seen = now
        return True

    async def check_stalled(self) -> None:
        """Seek back partitions with records left that delivered nothing for a while
        (records lost at the end of a partition leave no later record to notice it)."""
        now = self._clock()
        consumer = self._consumer()
        for tp, state in list(self._partitions.items()):
            if now - state.last_seen < self._stall:
                continue
            if (state.rewound_at is not None and now - state.rewound_at < self._stall) or (
                tp not in consumer.assignment()
            ):
                continue
            highwater = consumer.highwater(tp)
            if highwater is not None and highwater > state.expected:
                await self._rewind(tp, state, now, f"high watermark {highwater}")

    async def _rewind(self, tp: Any, state: _Partition, now: float, seen: str) -> None:
        log.warning(
            "delivery.rewound",
            service=self._service,
            topic=tp.topic,
            partition=tp.partition,
            expected=state.expected,
            seen=seen,
        )
        self.rewinds += 1
        state.rewound_at = now
        state.last_seen = now
        await self._consumer().seek(tp, state.expected)


def watch_delivery(app: Any, service: str, stall_seconds: float = STALL_SECONDS) -> DeliveryWatch:
    """A `DeliveryWatch` on a faust app: forgets on every rebalance and looks for stalled
    partitions every few seconds (not while the app rebalances or recovers tables)."""
    watch = DeliveryWatch(lambda: app.consumer, service, stall_seconds)
    app.on_partitions_assigned.connect(watch.retain)

    async def check() -> None:
        if not (app.rebalancing or getattr(app, "in_recovery", False)):
            await watch.check_stalled()

    app.timer(interval=max(1.0, stall_seconds / 3))(check)
    return watch
