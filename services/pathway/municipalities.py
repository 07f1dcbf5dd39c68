"""The municipalities (kommunenummer -> name) the deployment serves, from a TOML file."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

DEFAULT_FILE = Path(__file__).resolve().parent / "municipalities.toml"
ENV_VAR = "OVERGANG_MUNICIPALITIES_FILE"
_NUMBER = re.compile(r"^\d{4}$")


def municipalities_file() -> Path:
    configured = os.environ.get(ENV_VAR, "").strip()
    return Path(configured) if configured else DEFAULT_FILE


def load_municipalities(path: Path | None = None) -> dict[str, str]:
    """`[municipalities]` table of `"<4 digits>" = "<name>"`; a bad entry is a start-up error."""
    path = path or municipalities_file()
    with path.open("rb") as handle:
        table = tomllib.load(handle).get("municipalities")
    if not isinstance(table, dict) or not table:
        raise ValueError(f"{path}: needs a non-empty [municipalities] table")
    known: dict[str, str] = {}
    for number, name in table.items():
        if not _NUMBER.match(number) or not isinstance(name, str):
            raise ValueError(f"{path}: {number!r} is not '<4-digit kommunenummer>' = '<name>'")
        known[number] = name
    return known
