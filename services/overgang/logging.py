"""Structured JSON logs that can never carry a national identity number.

Two layers, one rule (`redact_text`): every run of 11 digits, also written `ddmmyy nnnnn`
or `ddmmyy-nnnnn`, is replaced, check digits or not (over-redaction is the safe side).

- structlog: `redact_national_ids` walks the event dict (str, bytes, 11-digit ints, nested
  dicts/lists/tuples/sets, keys too) and the rendered line is scrubbed once more.
- stdlib `logging` (grpc, faust, mode, aiokafka, kafka, sqlalchemy, alembic, asyncio,
  warnings, ...): `NationalIdFilter` on the root handler rewrites the record's message,
  exception text and stack before any formatter sees them.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[redacted-id]"
# Eleven digits, not inside a longer run of digits; `ddmmyy nnnnn` / `ddmmyy-nnnnn` too.
_PATTERN = r"(?<!\d)\d{6}[ .\-\u00a0]?\d{5}(?!\d)"
_ID_TEXT = re.compile(_PATTERN)
_ID_BYTES = re.compile(rb"(?<![0-9])[0-9]{6}(?:[ .\-\xa0]|\xc2\xa0)?[0-9]{5}(?![0-9])")
_REDACTED_BYTES = REDACTED.encode()

# Loggers the services' libraries write to; all of them reach the root handler.
LIBRARY_LOGGERS = (
    "grpc",
    "faust",
    "mode",
    "aiokafka",
    "kafka",
    "sqlalchemy",
    "alembic",
    "asyncio",
    "py.warnings",
)


def redact_text(text: str) -> str:
    """`text` with every national id in it replaced. Dead-letter reasons use it too."""
    return _ID_TEXT.sub(REDACTED, text)


def redact(value: Any) -> Any:
    """A copy of `value` with national ids replaced, through containers."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes | bytearray):
        return _ID_BYTES.sub(_REDACTED_BYTES, bytes(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return REDACTED if _ID_TEXT.fullmatch(str(abs(value))) else value
    if isinstance(value, dict):
        return {redact(k): redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = (redact(v) for v in value)
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if isinstance(value, BaseException):
        return redact_text("".join(traceback.format_exception_only(type(value), value)).strip())
    return value


def redact_national_ids(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: put it after `format_exc_info`, before the renderer."""
    for key, value in list(event_dict.items()):
        event_dict[key] = redact(value)
    return event_dict


def redacted_renderer(render: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap the final renderer: whatever its repr() of an object held is scrubbed too."""

    def wrapped(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
        return redact(render(logger, method, event_dict))

    return wrapped


_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}
_FORMATTER = logging.Formatter()


class NationalIdFilter(logging.Filter):
    """Rewrites a record so that no handler after it can print a national id: the
    formatted message, the exception text (the traceback is formatted here, once, and
    the live exception dropped), the stack, and any `extra=` attributes."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken %-format: keep both parts, never raise from logging
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = redact_text(message), None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = _FORMATTER.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_ATTRS:
                setattr(record, name, redact(value))
        return True


_HANDLER_MARK = "_overgang_handler"


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of `logger` (default root) and of the library
    loggers that have handlers of their own (idempotent)."""
    loggers = [logger or logging.getLogger(), *map(logging.getLogger, LIBRARY_LOGGERS)]
    for each in loggers:
        for handler in each.handlers:
            if not any(isinstance(f, NationalIdFilter) for f in handler.filters):
                handler.addFilter(NationalIdFilter())


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    uncaught = logging.getLogger("overgang.uncaught")
    uncaught.critical("uncaught exception", exc_info=(kind, value, tb))


def configure_logging(service: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    """JSON logs on `stream` (default stderr) for structlog and every stdlib logger, all
    redacted. Uncaught exceptions are logged (and so redacted) instead of printed raw."""
    out = stream or sys.stderr
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level)
    install_redaction(root)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    # Client libraries narrate every connection at INFO; keep their warnings only.
    for noisy in ("kafka", "aiokafka", "faust", "mode", "grpc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_national_ids,
            redacted_renderer(structlog.processors.JSONRenderer()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
