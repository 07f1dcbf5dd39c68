"""One audit record and its stored form (`overgang.audit` records them). Kept apart
from the recording machinery so that reading the trail (`overgang audit`) imports no
gRPC, Kafka or SQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

AUDIT_TOPIC = "overgang.audit.v1"
OK = "ok"
REFUSED = "refused"


@dataclass(frozen=True)
class AuditRecord:
    at: str  # ISO 8601, UTC
    service: str
    rpc: str
    identity: str  # Caller.identity; "" when the caller was not authenticated
    role: str
    peer: str
    outcome: str  # OK or REFUSED
    episode_id: str = ""
    episode_ids: tuple[str, ...] = ()
    query: Mapping[str, str] = field(default_factory=dict)
    detail: str = ""  # what was refused, or e.g. "not found"

    def to_json(self) -> bytes:
        body = asdict(self)
        body["episode_ids"] = list(self.episode_ids)
        return json.dumps(body, sort_keys=True, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, value: bytes) -> AuditRecord:
        """Raises ValueError for a value that is not an audit record."""
        try:
            body = json.loads(value)
            if not isinstance(body, dict):
                raise TypeError("not an object")
            body["episode_ids"] = tuple(body.get("episode_ids", ()))
            return cls(**body)
        except (TypeError, UnicodeDecodeError) as exc:
            raise ValueError(f"not an audit record: {type(exc).__name__}") from None

    @property
    def time(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.at)

    def mentions(self, episode_id: str) -> bool:
        return episode_id == self.episode_id or episode_id in self.episode_ids
