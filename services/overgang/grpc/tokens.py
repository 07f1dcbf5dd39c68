"""Bearer tokens and the roles they carry, hashed at rest.

One entry per line of `OVERGANG_AUTH_TOKENS_FILE` (`#` at the start or after a space starts
a comment), or comma-separated in `OVERGANG_AUTH_TOKENS`:

    sha256:<64 hex digits of sha256(token)>=<role> [<name>]
    <token>=<role> [<name>]          plain: accepted, with a warning at load time

`<name>` is the caller's identity in audit records and task claims (default: the role and
the first 8 hex digits of the token's hash). A new token and its line:
`python -m overgang.grpc.tokens 'coordinator:1103/HEALTH_OFFICE' kari`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from overgang.grpc.roles import Caller, Role, RoleError
from overgang.logging import get_logger

log = get_logger(__name__)

HASHED = "sha256:"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_COMMENT = re.compile(r"(?:^|\s)#")  # a line or its tail; `#` inside a name is kept
_NAME = re.compile(r"[A-Za-z0-9._@:/#-]{1,100}")


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def hashed_line(token: str, role: str, name: str = "") -> str:
    """The tokens-file line for `token` (the token itself is not in it)."""
    line = f"{HASHED}{token_digest(token).hex()}={Role.parse(role)}"
    return f"{line} {name}" if name else line


@dataclass(frozen=True)
class TokenEntry:
    digest: bytes  # sha256 of the token
    caller: Caller
    plain: bool  # the token was written in clear where it was loaded from


def parse_entry(text: str, where: str) -> TokenEntry:
    fields = text.split()
    if len(fields) > 2:
        raise RoleError(f"{where}: expected <token>=<role> [<name>], got {len(fields)} fields")
    secret, sep, role_text = fields[0].rpartition("=")
    if not sep or not secret:
        raise RoleError(f"{where}: expected <token>=<role> [<name>]")
    try:
        role = Role.parse(role_text)
    except RoleError as exc:
        raise RoleError(f"{where}: {exc}") from None
    plain = not secret.startswith(HASHED)
    if plain:
        digest = token_digest(secret)
    else:
        hex_digest = secret.removeprefix(HASHED).lower()
        if not _HEX64.fullmatch(hex_digest):
            raise RoleError(f"{where}: {HASHED} must be followed by 64 hex digits")
        digest = bytes.fromhex(hex_digest)
    name = fields[1] if len(fields) == 2 else f"{role}#{digest.hex()[:8]}"
    if not _NAME.fullmatch(name):
        raise RoleError(f"{where}: a name is 1-100 of [A-Za-z0-9._@:/#-]")
    return TokenEntry(digest=digest, caller=Caller(role, name), plain=plain)


def _env_entries(tokens: str) -> Iterator[TokenEntry]:
    for number, text in enumerate(tokens.split(","), start=1):
        if text.strip():
            yield parse_entry(text, f"OVERGANG_AUTH_TOKENS entry {number}")


def _file_entries(path: str) -> Iterator[TokenEntry]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RoleError(f"OVERGANG_AUTH_TOKENS_FILE {path}: {exc.strerror}") from None
    for number, line in enumerate(lines, start=1):
        text = _COMMENT.split(line, maxsplit=1)[0].strip()
        if text:
            yield parse_entry(text, f"{path}:{number}")


class TokenTable:
    """Token digests -> callers. Lookup compares against every entry in constant time."""

    def __init__(self, entries: Iterable[TokenEntry]) -> None:
        self._entries: list[TokenEntry] = []
        seen: set[bytes] = set()
        for entry in entries:
            if entry.digest in seen:
                raise RoleError(f"a token is listed twice (second for {entry.caller.identity})")
            seen.add(entry.digest)
            self._entries.append(entry)

    @classmethod
    def load(cls, tokens: str = "", tokens_file: str = "") -> TokenTable:
        table = cls([*_env_entries(tokens), *(_file_entries(tokens_file) if tokens_file else ())])
        plain = sum(e.plain for e in table._entries)
        if plain:
            log.warning(
                "auth.plain_tokens",
                count=plain,
                detail="tokens stored in clear; write sha256:<hex>=<role> lines instead "
                "(python -m overgang.grpc.tokens)",
            )
        return table

    def __len__(self) -> int:
        return len(self._entries)

    def caller_for(self, token: str) -> Caller | None:
        presented = token_digest(token)
        found: Caller | None = None
        for entry in self._entries:  # no early exit: the time does not say which matched
            if hmac.compare_digest(entry.digest, presented):
                found = entry.caller
        return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2:
        print("usage: python -m overgang.grpc.tokens <role> [<name>]", file=sys.stderr)
        return 2
    token = secrets.token_urlsafe(32)
    print(f"token (give to the caller): {token}")
    print(f"line (OVERGANG_AUTH_TOKENS_FILE): {hashed_line(token, *args)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
