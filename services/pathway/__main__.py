"""`python -m pathway`: run the pathway service until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import os
import sys

from overgang.config import load_settings
from overgang.grpc.server import install_shutdown_handlers
from overgang.logging import configure_logging
from pathway.runtime import PathwayRuntime
from pathway.streams import GROUP_ID


async def serve() -> int:
    """Runs until SIGTERM/SIGINT (exit 0) or until a background loop dies (exit 1)."""
    stop = asyncio.Event()
    install_shutdown_handlers(stop)
    settings = load_settings()
    runtime = PathwayRuntime(settings, group_id=GROUP_ID + settings.app_id_suffix)
    await runtime.start()
    waits = [asyncio.create_task(stop.wait()), asyncio.create_task(runtime.failed.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
        await runtime.stop()
    return 1 if runtime.failed.is_set() else 0


def main() -> None:
    configure_logging("pathway", os.environ.get("LOG_LEVEL", "INFO").upper())
    sys.exit(asyncio.run(serve()))


if __name__ == "__main__":
    main()
