"""A graceful stop that cannot hang: each step of a service's shutdown gets a bound, and
one that overruns is logged and left behind, so SIGTERM always ends the process."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

STEP_SECONDS = 10.0


async def bounded(step: Awaitable[Any], what: str, log: Any, seconds: float = STEP_SECONDS) -> None:
    try:
        await asyncio.wait_for(step, timeout=seconds)
    except TimeoutError:
        log.error("shutdown.step_overran", step=what, seconds=seconds)
    except Exception as exc:  # a failing step must not keep the others from running
        log.warning("shutdown.step_failed", step=what, error=f"{type(exc).__name__}: {exc}")
