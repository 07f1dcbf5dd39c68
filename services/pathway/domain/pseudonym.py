"""Keyed pseudonyms for national ids: stable per key, not reversible without the key."""

from __future__ import annotations

import hashlib
import hmac

from pathway.domain.national_id import NationalId


def pseudonymise(national_id: NationalId, key: str) -> str:
    digest = hmac.new(key.encode(), national_id.value.encode(), hashlib.sha256).hexdigest()
    return f"p-{digest[:32]}"
