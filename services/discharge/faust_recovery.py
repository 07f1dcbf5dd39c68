"""A fix for a faust-streaming table-recovery race, applied through faust's own extension
point (`faust.App(TableManager=ClockTableManager)`), not by patching faust globally.

The bug (faust-streaming 0.15.x, `faust/tables/recovery.py`, `Recovery.on_recovery_completed`;
the same ordering bug faust-streaming #216 / PR #217 fixed for apps *without* tables in
`Recovery._resume_streams`, and related to #221 / PR #223): when the changelogs have been
read, the consumer flow (`consumer.resume_flow()`) and `app.flow_control` are still on from
reading them. `on_recovery_completed` then

1. resumes the stream partitions (`consumer.resume_partitions`),
2. awaits `consumer.perform_seek()` (a round trip per partition to read committed offsets),
3. calls `app.flow_control.resume()`, which *clears every agent's queue*.

While (2) is in flight the fetcher already delivers the records aiokafka prefetched for the
newly assigned stream partitions: `Consumer._drain_messages` puts them in the agent's queue
and moves `Consumer._read_offset` past them. (3) then throws away those not yet processed,
and when the fetcher reads them again from the committed offset, `_drain_messages` drops
them as already read ("DROPPED MESSAGE ROFF"). After a hand-over the survivor never
applies those input events: its clocks stay behind replay for good, and since the offsets
of the dropped records are never acked, `Consumer._new_offset` stops committing that
partition as well.

The fix: stop the consumer flow and suspend flow control before upstream's
`on_recovery_completed` runs. Nothing is delivered while it seeks the stream partitions to
their committed offsets; its own `flow_control.resume()` + `consumer.resume_flow()` at the
end start delivery again from those offsets. If another rebalance interrupts it, the next
recovery turns the flow back on, as it always does.

A second faust failure, a recovery that receives no changelog record at all although
records are left (faust-streaming #176), is not fixed here but watched: see
`discharge/recovery_watchdog.py`, run by this recovery service every few seconds.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from faust.tables import TableManager
from faust.tables.recovery import Recovery
from mode import Service

from discharge.recovery_watchdog import RecoveryState, RecoveryWatchdog, restart_in_place
from overgang.config import load_settings
from overgang.logging import get_logger

log = get_logger(__name__)

WATCH_SECONDS = 5.0


class SeekBeforeDeliverRecovery(Recovery):  # type: ignore[misc]  # faust is untyped
    """`Recovery` whose completion delivers stream records only after the seek, watched
    by a `RecoveryWatchdog` (a recovery that stalls restarts the worker)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.watchdog = RecoveryWatchdog(
            self.recovery_state,
            restart_in_place,
            monotonic,
            load_settings().recovery_stall_seconds,
        )

    def recovery_state(self) -> RecoveryState:
        if not self.in_recovery:
            return RecoveryState(False, None, {}, {})
        # Only partitions assigned now: highwaters of revoked ones may linger.
        active = set(self.active_tps)
        return RecoveryState(
            in_recovery=True,
            started_at=self._recovery_started_at,
            last_event_at=dict(self._active_events_received_at),
            remaining={tp: n for tp, n in self.active_remaining().items() if tp in active},
        )

    @Service.timer(WATCH_SECONDS)
    async def _watch_recovery(self) -> None:
        try:
            await self.watchdog.check()
        except Exception:  # a watchdog must never take the recovery service down
            log.exception("recovery.watchdog_failed")

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        self.app.consumer.stop_flow()
        self.app.flow_control.suspend()
        await super().on_recovery_completed(generation_id)


class ClockTableManager(TableManager):  # type: ignore[misc]
    """faust's `TableManager` with `SeekBeforeDeliverRecovery` as its recovery service."""

    _recovery: Recovery | None = None

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekBeforeDeliverRecovery(
                self.app, self, beacon=self.beacon, loop=self.loop
            )
        return self._recovery
