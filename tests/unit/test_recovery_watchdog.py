"""The changelog-recovery watchdog (discharge/recovery_watchdog.py): a recovery with
records left that receives none for the stall time restarts the worker, once; anything
else leaves it alone."""

from __future__ import annotations

import asyncio
import sys

import pytest

from discharge import recovery_watchdog as watchdog
from discharge.recovery_watchdog import RecoveryState, RecoveryWatchdog, stalled

STALL = 60.0


def recovering(started_at: float, remaining: dict[str, int], **last: float) -> RecoveryState:
    return RecoveryState(True, started_at, last, remaining)


def test_records_left_and_none_received_since_recovery_began_is_a_stall() -> None:
    state = recovering(100.0, {"clocks-1": 51, "clocks-2": 20})
    assert stalled(state, now=160.0, stall_seconds=STALL) == ["clocks-1", "clocks-2"]


def test_a_recovery_younger_than_the_stall_time_is_left_alone() -> None:
    assert stalled(recovering(100.0, {"clocks-1": 51}), now=159.0, stall_seconds=STALL) == []


def test_a_partition_still_receiving_records_is_not_stalled() -> None:
    state = recovering(100.0, {"clocks-1": 51}, **{"clocks-1": 150.0})
    assert stalled(state, now=200.0, stall_seconds=STALL) == []


def test_a_partition_that_stopped_receiving_with_records_left_is_stalled() -> None:
    state = recovering(100.0, {"clocks-1": 51}, **{"clocks-1": 130.0})
    assert stalled(state, now=190.0, stall_seconds=STALL) == ["clocks-1"]


def test_a_partition_read_to_its_end_is_not_stalled() -> None:
    assert stalled(recovering(100.0, {"clocks-1": 0}), now=500.0, stall_seconds=STALL) == []


def test_no_recovery_in_progress_is_never_a_stall() -> None:
    idle = RecoveryState(False, None, {}, {"clocks-1": 51})
    assert stalled(idle, now=10_000.0, stall_seconds=STALL) == []


def test_an_event_from_before_this_recovery_does_not_make_it_older() -> None:
    # received during an earlier recovery: the clock starts at this one's start
    state = recovering(100.0, {"clocks-1": 51}, **{"clocks-1": 10.0})
    assert stalled(state, now=150.0, stall_seconds=STALL) == []


def test_the_watchdog_acts_once_on_a_stall_and_not_before() -> None:
    now = [100.0]
    acted: list[float] = []

    async def act() -> None:
        acted.append(now[0])

    dog = RecoveryWatchdog(lambda: recovering(100.0, {"clocks-1": 5}), act, lambda: now[0], STALL)

    async def run() -> list[bool]:
        results = []
        for t in (130.0, 161.0, 200.0):
            now[0] = t
            results.append(await dog.check())
        return results

    assert asyncio.run(run()) == [False, True, True]
    assert acted == [161.0]


def test_the_restart_execs_the_same_command_and_counts_the_restarts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    execs: list[list[str]] = []
    monkeypatch.setattr(sys, "orig_argv", ["/usr/bin/python3", "-m", "discharge"])
    monkeypatch.setattr(watchdog.os, "execv", lambda path, argv: execs.append(argv))
    monkeypatch.setenv(watchdog.RESTARTS_ENV, "2")

    asyncio.run(watchdog.restart_in_place())
    assert execs == [[sys.executable, "-m", "discharge"]]
    assert watchdog.os.environ[watchdog.RESTARTS_ENV] == "3"
