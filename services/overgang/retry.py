"""Infrastructure errors are waited out, bad input is not: the one rule every consumer
follows so that a Kafka, database or network outage never sends a good record to the
dead-letter topic, and a bad record never stalls its partition."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka.errors import KafkaError as AIOKafkaError
from kafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

T = TypeVar("T")

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 30.0


def is_transient(exc: BaseException) -> bool:
    """Whether the same work may succeed later without any change to its input."""
    if isinstance(exc, DBAPIError):
        # A lost or refused connection; an integrity error etc. is about the data.
        return isinstance(exc, OperationalError) or exc.connection_invalidated
    return isinstance(
        exc, AIOKafkaError | KafkaError | PoolTimeout | TimeoutError | ConnectionError | OSError
    )


async def until_done(
    work: Callable[[], Awaitable[T]],
    what: str,
    log: Any,
    *,
    first_delay: float = FIRST_DELAY_S,
    max_delay: float = MAX_DELAY_S,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run `work` until it succeeds, retrying transient errors with exponential backoff
    (the caller acknowledges nothing meanwhile); any other error is raised at once."""
    delay = first_delay
    attempt = 0
    while True:
        try:
            return await work()
        except Exception as exc:
            if not is_transient(exc):
                raise
            attempt += 1
            log.warning(
                "retry.transient_error",
                what=what,
                attempt=attempt,
                delay_s=delay,
                error=f"{type(exc).__name__}: {str(exc)[:200]}",
            )
            await sleep(delay)
            delay = min(delay * 2, max_delay)
