"""Request validation at the gRPC edge: every field violation of a request at once, each
under its proto JSON (camelCase) path, for `google.rpc.BadRequest`: the decoder's contract,
the municipalities served, no time in the future, the plausibility windows and the size
of repeated fields (`overgang.plausibility`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from overgang.codec import MUNICIPALITY, InvalidEvent, event_from_proto
from overgang.events import MUNICIPAL_KINDS, EpisodeEvent
from overgang.grpc.errors import FieldViolation
from overgang.plausibility import MAX_NEEDS, Windows
from overgang.plausibility import event_violations as implausible
from overgang.v1 import events_pb2, pathway_pb2
from pathway.convert import decode_page_token

MAX_FUTURE = dt.timedelta(minutes=5)
MAX_REPAIRS = 20


def _repair(msg: events_pb2.Event, path: str) -> bool:
    """Make the field `event_from_proto` complained about valid, so the next pass finds
    the next problem: every violation is reported at once, with the codec's own rules."""
    if path == "eventId":
        msg.event_id = "placeholder"
    elif path == "episodeId":
        msg.episode_id = "0:placeholder"
    elif path == "occurredAt":
        msg.occurred_at.GetCurrentTime()
    elif path == "municipality":
        msg.municipality = "0000"
    elif path == "division":
        msg.division = events_pb2.SOMATIC
    elif path == "payload":
        msg.admitted.SetInParent()
    elif path.startswith("admissionNotified.expectedNeeds"):
        _drop_unknown_needs(msg.admission_notified.expected_needs)
    elif path.startswith("dischargeReadyNotified.needs"):
        _drop_unknown_needs(msg.discharge_ready_notified.needs)
    elif path == "dischargeReadyNotified.readyAt":
        msg.discharge_ready_notified.ready_at.CopyFrom(msg.occurred_at)
    elif path == "municipalityAnswered.expectedReadyDate":
        msg.municipality_answered.expected_ready_date = ""
    elif path == "discharged.destination":
        msg.discharged.destination = events_pb2.Discharged.HOME
    else:
        return False
    return True


def _drop_unknown_needs(values: Any) -> None:
    # Unspecified or a number this version does not know: one violation, then drop them all.
    known = set(events_pb2.Need.values()) - {events_pb2.NEED_UNSPECIFIED}
    kept = [v for v in values if v in known]
    del values[:]
    values.extend(kept)


def _capped(work: events_pb2.Event) -> list[FieldViolation]:
    """Cut repeated fields to MAX_NEEDS entries (before anything reads them one by one)."""
    violations: list[FieldViolation] = []
    for path, values in (
        ("admissionNotified.expectedNeeds", work.admission_notified.expected_needs),
        ("dischargeReadyNotified.needs", work.discharge_ready_notified.needs),
    ):
        if len(values) > MAX_NEEDS:
            violations.append((f"event.{path}", f"has more than {MAX_NEEDS} entries"))
            del values[MAX_NEEDS:]
    return violations


def event_violations(
    msg: events_pb2.Event,
    municipalities: Mapping[str, str],
    now: dt.datetime,
    windows: Windows,
    first_event_at: dt.datetime | None = None,
) -> tuple[list[FieldViolation], EpisodeEvent | None]:
    """All violations of a submitted event (paths under `event.`), or the valid event.
    `first_event_at`: the earliest event time recorded for its episode (None: none)."""
    work = events_pb2.Event()
    work.CopyFrom(msg)
    violations = _capped(work)
    event: EpisodeEvent | None = None
    for _ in range(MAX_REPAIRS):
        try:
            event = event_from_proto(work)
            break
        except InvalidEvent as exc:
            violations.append((f"event.{exc.field}", exc.reason))
            if not _repair(work, exc.field):
                break
    flagged = {path for path, _ in violations}
    if (
        "event.municipality" not in flagged
        and MUNICIPALITY.match(msg.municipality)
        and msg.municipality not in municipalities
    ):
        violations.append(
            ("event.municipality", f"{msg.municipality} is not a municipality this service serves")
        )
    if (
        "event.occurredAt" not in flagged
        and msg.HasField("occurred_at")
        and msg.occurred_at.ToDatetime(tzinfo=dt.UTC) > now + MAX_FUTURE
    ):
        violations.append(("event.occurredAt", "is more than 5 minutes in the future"))
    if event is not None:  # possibly repaired: skip what was reported already
        violations.extend(
            (f"event.{path}", reason)
            for path, reason in implausible(
                event, now=now, windows=windows, first_event_at=first_event_at
            )
            if f"event.{path}" not in flagged
        )
    if event is not None and event.kind in MUNICIPAL_KINDS:
        violations.append(
            (f"event.{event.kind.value}", "is a municipal event: a hospital may not submit it")
        )
    return violations, (event if not violations else None)


def list_violations(request: pathway_pb2.ListPathwaysRequest) -> tuple[list[FieldViolation], str]:
    """All violations of a ListPathways request, and the episode id its page token names
    ("" for the first page)."""
    violations: list[FieldViolation] = []
    after = ""
    if request.page_size < 0:
        violations.append(("pageSize", "must not be negative"))
    if request.page_token:
        try:
            after = decode_page_token(request.page_token)
        except ValueError as exc:
            violations.append(("pageToken", str(exc)))
    if request.municipality and not MUNICIPALITY.match(request.municipality):
        violations.append(("municipality", "must be a four-digit kommunenummer"))
    return violations, after
