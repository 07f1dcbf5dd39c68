"""`python -m coordination`: the coordination service until SIGTERM / SIGINT."""

from __future__ import annotations

import asyncio

from coordination.runtime import CoordinationRuntime
from coordination.streams import APP_ID
from overgang.config import Settings, load_settings
from overgang.grpc.server import install_shutdown_handlers
from overgang.logging import configure_logging


async def serve(settings: Settings) -> None:
    runtime = CoordinationRuntime(
        settings,
        sla_seconds=settings.coordination_sla_seconds,
        app_id=APP_ID + settings.app_id_suffix,
    )
    stop = asyncio.Event()
    install_shutdown_handlers(stop)
    await runtime.start()
    try:
        await stop.wait()
    finally:
        await runtime.stop()


def main() -> None:
    configure_logging("coordination")
    asyncio.run(serve(load_settings()))


if __name__ == "__main__":
    main()
