"""No national id reaches a log, whatever path it takes: structlog, stdlib loggers, the
libraries' loggers, exceptions with tracebacks, bytes, nested values, warnings, uncaught
exceptions, dead-letter reasons."""

from __future__ import annotations

import io
import logging
import re
import sys
import warnings
from collections import namedtuple
from collections.abc import Iterator

import pytest
import structlog
from sqlalchemy import create_engine, text

from overgang.kafka.records import Consumed, dead_letter_for, reason_of, scrub_reason
from overgang.logging import LIBRARY_LOGGERS, REDACTED, configure_logging, get_logger, redact

DIGITS = "01019012345"  # the check digits do not matter: every 11-digit run goes
FORMS = [DIGITS, "010190 12345", "010190-12345", "010190\u00a012345", "010190.12345"]
# Any 11 digits left in the output, also as JSON writes a no-break space.
LEAK = re.compile(r"\d{6}(?:[ .\-\u00a0]|\\u00a0)?\d{5}")

Pair = namedtuple("Pair", "left right")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    out = io.StringIO()
    hook = sys.excepthook
    configure_logging("redaction-test", "DEBUG", stream=out)
    try:
        yield out
    finally:
        sys.excepthook = hook
        logging.captureWarnings(False)
        structlog.reset_defaults()


def _leaks(output: str) -> list[str]:
    return LEAK.findall(output)


def _fail_with(national_id: str) -> None:
    raise ValueError(f"duplicate key value violates unique constraint: ({national_id})")


@pytest.mark.parametrize("national_id", FORMS)
def test_every_log_path_is_redacted(captured: io.StringIO, national_id: str) -> None:
    slog = get_logger("overgang.test")
    slog.info(
        f"patient {national_id} admitted",
        national_id=national_id,
        inside=f"id={national_id};x",
        raw=national_id.encode("utf-8"),
        latin=national_id.encode("latin-1"),
        nested={"a": [(national_id, {"b": {national_id}})], national_id: Pair(1, national_id)},
        number=31129912345,
        error=ValueError(national_id),
    )
    try:
        _fail_with(national_id)
    except ValueError:
        slog.exception("structlog.failed", during=national_id)
        logging.getLogger("overgang.std").exception("stdlib failed for %s", national_id)

    std = logging.getLogger("overgang.std")
    std.info("intake of %s", national_id)
    std.warning("payload %r", national_id.encode())
    std.info("dict %s", {"fnr": national_id, "list": [national_id]})
    std.info("extra", extra={"patient": national_id})
    std.warning(f"preformatted {national_id}", stack_info=True)
    std.info("broken %d format", national_id)  # a %-format error must not leak or raise

    for name in [*LIBRARY_LOGGERS, "sqlalchemy.engine.Engine", "aiokafka.consumer.fetcher"]:
        logging.getLogger(name).warning("%s saw %s", name, national_id)
        logging.getLogger(name).error("failed", exc_info=ValueError(national_id))

    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # SQL and parameters
    try:
        with create_engine("sqlite://").connect() as connection:
            connection.execute(text("SELECT :fnr"), {"fnr": national_id}).all()
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.NOTSET)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"deprecated for {national_id}", UserWarning, stacklevel=1)

    try:
        _fail_with(national_id)
    except ValueError:
        sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]

    output = captured.getvalue()
    assert not _leaks(output), output
    # everything was logged, only the ids went
    for expected in ("admitted", "structlog.failed", "Traceback", "intake of", "payload b'"):
        assert expected in output
    for expected in ("sqlalchemy.engine.Engine", "SELECT ?", "deprecated for", "uncaught"):
        assert expected in output
    assert output.count(REDACTED) >= 30


def test_redact_keeps_other_numbers_and_types() -> None:
    assert redact("episode 7777:202403-0001 at 2024-03-01T10:00") == (
        "episode 7777:202403-0001 at 2024-03-01T10:00"
    )
    assert redact("012345678901") == "012345678901"  # 12 digits: not an id
    assert redact(True) is True and redact(12345) == 12345
    assert redact(("a", 1)) == ("a", 1)
    assert redact(b"x01019012345y") == b"x[redacted-id]y"
    assert redact(bytearray(b"010190-12345")) == b"[redacted-id]"


def test_dead_letter_reasons_are_scrubbed() -> None:
    reason = "national_id: 010190-12345 is not valid " + "x" * 2000
    assert DIGITS[:6] not in scrub_reason(reason) and len(scrub_reason(reason)) == 1000
    record = Consumed("overgang.hospital-events.v1", 0, 7, b"k", b"v")
    letter = dead_letter_for(record, f"bad id {DIGITS}", "pathway")
    assert reason_of(letter.headers) == f"bad id {REDACTED}"
    assert letter.value == b"v"  # the record itself is kept as it came
