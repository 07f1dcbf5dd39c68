"""In-process wake-up of the StreamTasks streams when task updates were committed.

The streams read their updates from the database (the update log is the source of
truth, and other processes may write it too); this only saves them the poll delay."""

from __future__ import annotations

import asyncio
import contextlib


class UpdateSignal:
    """Take `current()` before reading the database and wait on it afterwards: a commit in
    between has already set it, so no wake-up is lost."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        return self._event

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    @staticmethod
    async def wait(event: asyncio.Event, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=timeout)
