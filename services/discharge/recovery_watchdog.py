"""A watchdog over the clock table's changelog recovery: a worker whose recovery has
records left to read but receives none for `OVERGANG_RECOVERY_STALL_SECONDS` starts
itself again.

faust-streaming's recovery can wait forever after a rebalance: aiokafka keeps fetching
the changelog partitions, but no record reaches the recovery ("No event received for
active tp ... since recovery start"; faust-streaming #176, #597; seen here once in a full
CI run under load, with the survivor of a hand-over never serving its new partitions).
faust only warns. The cause sits in faust's fetch and flow-control path and has not been
isolated. A fresh process recovers: it is the same as a crash and restart, which the
write-ahead table and the delivery watch make safe (redelivered events are duplicates,
unsent announcements are sent again with the same ids).

So the worker replaces itself with a new image of the same command (`os.execv`: same
PID, environment and log files), so that a supervisor, a test harness or `overgang up`
sees the same process come back. It does not leave the consumer group first: stopping
faust's consumer in that state crashed the worker before the exec (its fetcher raised
on the way down, seen in CI). The group drops the old member when its session times out
(`BROKER_SESSION_TIMEOUT`, faust's default 60 s) and the new image takes its partitions.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from overgang.logging import get_logger

log = get_logger(__name__)

RESTARTS_ENV = "OVERGANG_RECOVERY_RESTARTS"  # how often this worker replaced itself


@dataclass(frozen=True)
class RecoveryState:
    """What faust's `Recovery` knows, read at one moment (monotonic seconds)."""

    in_recovery: bool
    started_at: float | None
    last_event_at: Mapping[Any, float]  # per changelog partition, while recovering
    remaining: Mapping[Any, int]  # records left per changelog partition


def stalled(state: RecoveryState, now: float, stall_seconds: float) -> list[Any]:
    """The changelog partitions with records left that have received nothing (since
    recovery began, or since their last record) for `stall_seconds`."""
    if not state.in_recovery or state.started_at is None:
        return []
    stuck = []
    for tp, left in state.remaining.items():
        if left <= 0:
            continue
        last = max(state.last_event_at.get(tp, state.started_at), state.started_at)
        if now - last >= stall_seconds:
            stuck.append(tp)
    return stuck


def restart_command() -> list[str]:
    """The command line this process was started with (`python -m discharge`)."""
    return [sys.executable, *sys.orig_argv[1:]]


async def restart_in_place() -> None:
    """The watchdog's action: this process becomes a new image of its own command."""
    count = int(os.environ.get(RESTARTS_ENV, "0")) + 1
    log.warning("recovery.restarting", restarts=count, command=restart_command()[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os.environ[RESTARTS_ENV] = str(count)
    os.execv(sys.executable, restart_command())


class RecoveryWatchdog:
    """Acts once, at the first `check` that finds the recovery stalled (the recovery
    service calls `check` every few seconds)."""

    def __init__(
        self,
        read: Callable[[], RecoveryState],
        act: Callable[[], Awaitable[None]],
        clock: Callable[[], float],
        stall_seconds: float,  # OVERGANG_RECOVERY_STALL_SECONDS (config.py)
    ) -> None:
        self.read = read
        self.act = act
        self.clock = clock
        self.stall_seconds = stall_seconds
        self.fired = False

    async def check(self) -> bool:
        """True if it acted (now or before)."""
        if self.fired:
            return True
        stuck = stalled(self.read(), self.clock(), self.stall_seconds)
        if not stuck:
            return False
        self.fired = True
        log.error(
            "recovery.stalled",
            partitions=sorted(str(tp) for tp in stuck),
            stall_seconds=self.stall_seconds,
            detail="changelog records left but none received: restarting the worker",
        )
        await self.act()
        return True
