"""What an event may plausibly hold beyond the decoder's contract: time windows against
now and the episode's own history (profile data, `plausibility.toml`), and the size of
its repeated fields. Pure checks, shared by the gRPC edges and the Kafka consumers.

Reasons name the field and the rule, never the value (`overgang.codec`'s convention).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path

from overgang.event_rules import MAX_REPEATED
from overgang.events import EpisodeEvent, EventKind

# Entries of a repeated field (needs, expectedNeeds): there are eight needs, so more is
# never a real event, and a long list is a denial of service (decoded one by one).
MAX_NEEDS = MAX_REPEATED  # the decoder's cap, checked at the gRPC edge before decoding
BUILT_IN = Path(__file__).with_name("plausibility.toml")
_KEYS = ("max_age_days", "max_before_first_event_days", "max_ready_before_notice_days")

Violation = tuple[str, str]  # (field path, reason), as overgang.grpc.errors.FieldViolation


class PlausibilityConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Windows:
    max_age: dt.timedelta
    max_before_first_event: dt.timedelta
    max_ready_before_notice: dt.timedelta
    source: str = "built-in"


def load_windows(path: str | Path | None = None) -> Windows:
    """The windows of `path` (default: the built-in file); raises PlausibilityConfigError."""
    where = Path(path) if path else BUILT_IN
    try:
        with where.open("rb") as handle:
            table = tomllib.load(handle).get("windows")
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PlausibilityConfigError(f"{where}: {exc}") from None
    if not isinstance(table, dict) or sorted(table) != sorted(_KEYS):
        raise PlausibilityConfigError(f"{where}: [windows] must set exactly {', '.join(_KEYS)}")
    days: list[int] = []
    for key in _KEYS:
        value = table[key]
        if type(value) is not int or value < 1:
            raise PlausibilityConfigError(f"{where}: windows.{key} must be a whole number >= 1")
        days.append(value)
    age, first, ready = (dt.timedelta(days=d) for d in days)
    return Windows(age, first, ready, source=str(where) if path else "built-in")


def _days(span: dt.timedelta) -> str:
    return f"{span.days} day{'s' if span.days != 1 else ''}"


def timestamp_violations(
    field: str,
    at: dt.datetime,
    *,
    now: dt.datetime,
    windows: Windows,
    first_event_at: dt.datetime | None = None,
) -> list[Violation]:
    """`at` (the time named `field`) against now and the episode's first event time."""
    found: list[Violation] = []
    if at < now - windows.max_age:
        found.append((field, f"is more than {_days(windows.max_age)} before now"))
    if first_event_at is not None and at < first_event_at - windows.max_before_first_event:
        span = _days(windows.max_before_first_event)
        found.append((field, f"is more than {span} before the episode's first event"))
    return found


def event_violations(
    event: EpisodeEvent,
    *,
    now: dt.datetime,
    windows: Windows,
    first_event_at: dt.datetime | None = None,
    occurred_field: str = "occurredAt",
) -> list[Violation]:
    """Every window a decoded event breaks (empty: plausible). `now`: the gRPC service's
    clock, or in a consumer the time the record was written; `first_event_at`: the
    earliest event time the caller knows of this episode (None: none yet);
    `occurred_field`: the name of the event time in the caller's message."""
    found = timestamp_violations(
        occurred_field, event.occurred_at, now=now, windows=windows, first_event_at=first_event_at
    )
    ready_at = event.ready_at
    notice = event.kind is EventKind.DISCHARGE_READY_NOTIFIED
    if notice and ready_at and ready_at < event.occurred_at - windows.max_ready_before_notice:
        span = _days(windows.max_ready_before_notice)
        found.append(("dischargeReadyNotified.readyAt", f"is more than {span} before the notice"))
    return found


def describe(violations: list[Violation]) -> str:
    """One reason for a dead letter: "field: rule; field: rule"."""
    return "; ".join(f"{field}: {reason}" for field, reason in violations)
