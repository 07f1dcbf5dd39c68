"""What an event's fields must look like: the patterns and bounds that the protobuf
decoder (`codec`) and the fast JSON path (`fast_json`) both check, defined once.

A leaf module (it imports nothing of the kernel's decoders), so both can use it.
"""

from __future__ import annotations

import datetime as dt
import re
import string

EPISODE_ID = re.compile(r"^(\d{1,9}):([A-Za-z0-9._-]{1,64})\Z", re.ASCII)
# Event ids: these characters, 1 to EVENT_ID_MAX of them.
EVENT_ID_CHARS = string.ascii_letters + string.digits + "._:@/-"
EVENT_ID_MAX = 128
EVENT_ID = re.compile(rf"^[{re.escape(EVENT_ID_CHARS)}]{{1,{EVENT_ID_MAX}}}\Z", re.ASCII)
MUNICIPALITY = re.compile(r"^\d{4}\Z", re.ASCII)
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}\Z", re.ASCII)
# Event times the clock can reason about; anything else is a broken record.
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
# Repeated fields (needs) hold at most this many entries: a 4 MiB list must not block
# the event loop while it is read (issue 8 item 8).
MAX_REPEATED = 32
# A discharge-ready notice may announce a readiness at most this far after itself.
MAX_READY_AFTER_NOTICE = dt.timedelta(days=31)
# RFC 3339 with offset, as google.protobuf.Timestamp's JSON form; the date is checked apart.
RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,9})?"
    r"(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)",
    re.ASCII,
)


class InvalidEvent(ValueError):
    """A record that breaks the contract. `field` uses the JSON (camelCase) path."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
