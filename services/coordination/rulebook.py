"""The rule book, at the edge: reads the routing rules (TOML data) for each
municipality, `rules/default.toml` deep-merged with `rules/<kommunenummer>.toml` when the
municipality has one, and turns them into the domain's RuleSet. All files are parsed
and validated at start-up, so a broken rule file stops the service early; every error
names the file and the key."""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from coordination.domain.due import DueRule, DueRuleError
from coordination.domain.rules import (
    DEFAULT_REHAB_PERIOD_DAYS,
    Occasion,
    Reaction,
    Rule,
    RuleError,
    RuleSet,
)
from coordination.domain.task import Priority, UnitKind
from overgang.events import Need
from overgang.vocabulary import TaskKind

PACKAGED_RULES = Path(__file__).resolve().parent / "rules"
DEFAULT_FILE = "default.toml"
UNIT_PART = re.compile(r"^[A-Z0-9_]{1,64}$")
RULE_KEYS = {"trigger", "task", "unit", "due", "priority", "title", "needs_any", "enabled"}
E = TypeVar("E", bound=StrEnum)


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
        return parse_rule_set(data)
    except RuleError as exc:
        raise RuleError(f"{name}: {exc}") from None


def merge_rule_data(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge of tables: the override replaces leaves and lists, adds new rules, and a
    rule set to `enabled = false` drops that default rule."""
    merged: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_rule_data(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_rule_set(data: Mapping[str, Any]) -> RuleSet:
    """A rule file's mapping (after merging) as a RuleSet; RuleError names the key."""
    _only(data, {"settings", "rules", "on", "units"}, "")
    settings = data.get("settings", {})
    _only(settings, {"rehab_period_days"}, "settings")
    rehab = settings.get("rehab_period_days", DEFAULT_REHAB_PERIOD_DAYS)
    if not isinstance(rehab, int) or isinstance(rehab, bool) or not 1 <= rehab <= 365:
        raise RuleError("settings.rehab_period_days: must be an integer 1-365")
    rules = tuple(
        _rule(name, body)
        for name, body in data.get("rules", {}).items()
        if not (isinstance(body, Mapping) and body.get("enabled", True) is False)
    )
    seen: set[tuple[Occasion, TaskKind]] = set()
    for rule in rules:
        if (rule.trigger, rule.task) in seen:
            raise RuleError(
                f"rules.{rule.name}: a second {rule.task} task on {rule.trigger} "
                "(task ids are <episode>:<kind>:<trigger>, so they would collide)"
            )
        seen.add((rule.trigger, rule.task))
    reactions = {
        _enum(Occasion, occ, f"on.{occ}"): _reaction(occ, body)
        for occ, body in data.get("on", {}).items()
    }
    offices = dict(_offices(kind, body) for kind, body in data.get("units", {}).items())
    return RuleSet(rules=rules, reactions=reactions, offices=offices, rehab_period_days=rehab)


def _only(body: Any, allowed: set[str], path: str) -> None:
    if not isinstance(body, Mapping):
        raise RuleError(f"{path or 'rule file'}: must be a table")
    unknown = sorted(set(body) - allowed)
    if unknown:
        where = f"{path}." if path else ""
        raise RuleError(f"{where}{unknown[0]}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _enum(enum: type[E], value: Any, path: str) -> E:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise RuleError(f"{path}: {value!r} is not one of {allowed}") from None


def _rule(name: str, body: Any) -> Rule:
    path = f"rules.{name}"
    _only(body, RULE_KEYS, path)
    for key in ("trigger", "task", "unit", "due"):
        if key not in body:
            raise RuleError(f"{path}.{key}: is required")
    try:
        due = DueRule.parse(str(body["due"]))
    except DueRuleError as exc:
        raise RuleError(f"{path}.due: {exc}") from None
    task = _enum(TaskKind, body["task"], f"{path}.task")
    return Rule(
        name=name,
        trigger=_enum(Occasion, body["trigger"], f"{path}.trigger"),
        task=task,
        unit=_enum(UnitKind, body["unit"], f"{path}.unit"),
        due=due,
        priority=_enum(Priority, body.get("priority", "NORMAL"), f"{path}.priority"),
        title=str(body.get("title", task.value.replace("_", " ").capitalize())),
        needs_any=frozenset(_enum(Need, n, f"{path}.needs_any") for n in body.get("needs_any", ())),
    )


def _reaction(occasion: str, body: Any) -> Reaction:
    path = f"on.{occasion}"
    _only(body, {"complete", "cancel", "reason"}, path)
    cancel = list(body.get("cancel", ()))
    return Reaction(
        complete=frozenset(
            _enum(TaskKind, k, f"{path}.complete") for k in body.get("complete", ())
        ),
        cancel=frozenset(_enum(TaskKind, k, f"{path}.cancel") for k in cancel if k != "*"),
        cancel_all="*" in cancel,
        reason=str(body.get("reason", occasion.replace("_", " "))),
    )


def _offices(kind: str, body: Any) -> tuple[UnitKind, tuple[str, ...]]:
    path = f"units.{kind}"
    _only(body, {"offices", "select"}, path)
    select = body.get("select", "patient_pseudonym_hash")
    if select != "patient_pseudonym_hash":
        raise RuleError(f"{path}.select: only 'patient_pseudonym_hash' is supported")
    names = tuple(body.get("offices", ()))
    for office in names:
        if not isinstance(office, str) or not UNIT_PART.match(office):
            raise RuleError(f"{path}.offices: {office!r} is not [A-Z0-9_]")
    if len(set(names)) != len(names):
        raise RuleError(f"{path}.offices: duplicate office")
    return _enum(UnitKind, kind, path), names
