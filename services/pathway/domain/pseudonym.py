"""Keyed pseudonyms for national ids: stable per key, not reversible without the key.

Keys are versioned so that a key can be rotated without losing returning patients. The
key file (`OVERGANG_PSEUDONYM_KEY_FILE`) holds one `v<N>=<secret>` line per version
(blank lines and `# comments` allowed); the highest N is current. A new episode gets its
patient's pseudonym under the current key; the store finds a returning patient by the
pseudonyms of every version (`PseudonymKeys.all_pseudonyms`), so old versions should stay
in the file as long as patients seen under them may come back (the store falls back to
the national id itself when one is gone). Rotate by adding `v<N+1>=<new secret>`.

No built-in key outside the loopback dev mode: `load_keys` refuses to run a service bound
beyond loopback without a key (`OVERGANG_INSECURE_DEV` does not change that: pseudonyms
made with a public key are reversible by trying every possible national id).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from overgang.config import Settings, is_loopback
from overgang.logging import get_logger
from pathway.domain.national_id import NationalId

log = get_logger(__name__)

DEV_KEY = "dev-only-not-secret"  # the Settings default: loopback (laptop, demo, tests) only
MIN_SECRET_LENGTH = 16  # for the current key of a service reachable beyond loopback
_LINE = re.compile(r"v([1-9]\d{0,5})=(.+)", re.ASCII)


class PseudonymKeyError(ValueError):
    """A missing, malformed or too weak key configuration. Never quotes a secret."""


def pseudonymise(national_id: NationalId, key: str | bytes) -> str:
    secret = key.encode() if isinstance(key, str) else key
    digest = hmac.new(secret, national_id.value.encode(), hashlib.sha256).hexdigest()
    return f"p-{digest[:32]}"


@dataclass(frozen=True)
class PseudonymKeys:
    """Secrets by version; the highest version is current."""

    secrets: Mapping[int, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.secrets:
            raise PseudonymKeyError("no pseudonym key")

    @classmethod
    def single(cls, secret: str) -> PseudonymKeys:
        """One key, version 1 (`OVERGANG_PSEUDONYM_KEY`, tests)."""
        if not secret:
            raise PseudonymKeyError("the pseudonym key is empty")
        return cls({1: secret.encode()})

    @classmethod
    def parse(cls, text: str, source: str = "the key file") -> PseudonymKeys:
        secrets: dict[int, bytes] = {}
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            match = _LINE.fullmatch(line)
            if match is None:
                raise PseudonymKeyError(f"{source} line {number}: write v<N>=<secret>")
            version = int(match.group(1))
            if version in secrets:
                raise PseudonymKeyError(f"{source} line {number}: v{version} is given twice")
            secrets[version] = match.group(2).strip().encode()
        if not secrets:
            raise PseudonymKeyError(f"{source} holds no v<N>=<secret> line")
        return cls(secrets)

    @property
    def current_version(self) -> int:
        return max(self.secrets)

    def pseudonym(self, national_id: NationalId) -> str:
        """Under the current key."""
        return pseudonymise(national_id, self.secrets[self.current_version])

    def all_pseudonyms(self, national_id: NationalId) -> dict[int, str]:
        """Under every known key version."""
        return {v: pseudonymise(national_id, s) for v, s in sorted(self.secrets.items())}


def load_keys(settings: Settings, bind_address: str) -> PseudonymKeys:
    """The pathway service's keys: the key file, else `OVERGANG_PSEUDONYM_KEY`, else the
    dev key on a loopback bind only. Raises `PseudonymKeyError` (start-up stops)."""
    loopback = is_loopback(bind_address)
    given = settings.pseudonym_key if settings.pseudonym_key != DEV_KEY else ""
    if settings.pseudonym_key_file:
        if given:
            raise PseudonymKeyError(
                "set OVERGANG_PSEUDONYM_KEY_FILE or OVERGANG_PSEUDONYM_KEY, not both"
            )
        keys = _read_key_file(Path(settings.pseudonym_key_file))
    elif given:
        keys = PseudonymKeys.single(given)
    elif loopback:
        log.warning(
            "pseudonym.dev_key",
            address=bind_address,
            detail="no OVERGANG_PSEUDONYM_KEY_FILE: a built-in key (loopback only)",
        )
        return PseudonymKeys.single(DEV_KEY)
    else:
        raise PseudonymKeyError(
            f"refusing to listen on {bind_address} without a pseudonym key: set "
            "OVERGANG_PSEUDONYM_KEY_FILE (lines v<N>=<secret>) or bind to 127.0.0.1"
        )
    current = keys.secrets[keys.current_version]
    if not loopback and (current == DEV_KEY.encode() or len(current) < MIN_SECRET_LENGTH):
        raise PseudonymKeyError(
            f"the current pseudonym key (v{keys.current_version}) is the built-in dev key or "
            f"shorter than {MIN_SECRET_LENGTH} characters"
        )
    return keys


def _read_key_file(path: Path) -> PseudonymKeys:
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise PseudonymKeyError(f"cannot read the pseudonym key file {path}: {reason}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("pseudonym.key_file_permissions", path=str(path), hint="chmod 600")
    return PseudonymKeys.parse(text, str(path))
