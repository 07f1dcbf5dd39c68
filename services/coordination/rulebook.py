"""Loads the routing rules (TOML data) for each municipality: `rules/default.toml`,
deep-merged with `rules/<kommunenummer>.toml` when the municipality has one. All files
are parsed and validated at start-up, so a broken rule file stops the service early."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from coordination.domain.tasks import RuleError, RuleSet, merge_rule_data

PACKAGED_RULES = Path(__file__).resolve().parent / "rules"
DEFAULT_FILE = "default.toml"


class RuleBook:
    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory else PACKAGED_RULES
        self._default = _load(self.directory / DEFAULT_FILE)
        self._sets: dict[str, RuleSet] = {"": _build(self._default, DEFAULT_FILE)}
        for path in sorted(self.directory.glob("*.toml")):
            if path.name == DEFAULT_FILE:
                continue
            code = path.stem
            if not (len(code) == 4 and code.isdigit()):
                raise RuleError(f"{path.name}: override files are named <kommunenummer>.toml")
            self._sets[code] = _build(merge_rule_data(self._default, _load(path)), path.name)

    @property
    def municipalities(self) -> list[str]:
        """Municipalities with their own overrides."""
        return sorted(code for code in self._sets if code)

    def for_municipality(self, code: str) -> RuleSet:
        return self._sets.get(code, self._sets[""])


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{path.name}: not valid TOML: {exc}") from None


def _build(data: dict[str, Any], name: str) -> RuleSet:
    try:
        return RuleSet.from_mapping(data)
    except RuleError as exc:
        raise RuleError(f"{name}: {exc}") from None
