"""What the clock accepts of an episode record on its source topics: a decodable event,
keyed by its episode, on the topic of its kind, plausible when it was written."""

from __future__ import annotations

import datetime as dt

from overgang.codec import InvalidEvent, decode_event
from overgang.events import EpisodeEvent
from overgang.kafka import topics
from overgang.kafka.records import ConsumedRecord, content_type, headers_of, judged_now
from overgang.plausibility import Windows, describe, event_violations


def checked_event(record: ConsumedRecord, now: dt.datetime, windows: Windows) -> EpisodeEvent:
    """The record's event, or InvalidEvent with the field and reason."""
    decoded = decode_event(record.value, content_type(headers_of(record.headers)))
    if record.key != decoded.episode_id.encode():
        raise InvalidEvent("key", "the record key must be the episode id")
    if record.topic != (expected := topics.topic_for(decoded)):
        raise InvalidEvent("payload", f"{decoded.kind.value} belongs on {expected}")
    # A backdated notice raises a bill, a backdated answer cuts one: judged against when
    # the record was written (the episode's history is judged at the gRPC edge).
    if violations := event_violations(decoded, now=judged_now(record, now), windows=windows):
        field, reason = violations[0]
        raise InvalidEvent(field, reason if len(violations) == 1 else describe(violations))
    return decoded
