"""Loads the rate table and rule profile from TOML (package defaults or operator files)."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

from discharge.domain.profile import NO_2019, LateAdmissionNotice, RuleProfile, coverage
from discharge.domain.rates import RateTable
from overgang.events import Division

DATA = Path(__file__).parent / "data"
DEFAULT_RATES = DATA / "rates-no.toml"
DEFAULT_PROFILE = DATA / "profile-no-2019.toml"


class ConfigError(ValueError):
    pass


def load_rates(path: str | Path | None = None) -> RateTable:
    source = Path(path) if path else DEFAULT_RATES
    try:
        with source.open("rb") as handle:
            raw = tomllib.load(handle).get("rates", {})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [rates] must be a table of year = NOK")
    rates: dict[int, int] = {}
    for year, amount in raw.items():
        if not (str(year).isascii() and str(year).isdigit() and len(str(year)) == 4):
            raise ConfigError(f"{source}: rate year {year!r} is not a four-digit year")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise ConfigError(f"{source}: rate for {year} must be a positive whole NOK amount")
        rates[int(year)] = amount
    return RateTable(rates, source=str(source))


def _coverage_starts(raw: Any) -> dict[Division, dt.date]:
    """`coverage_starts = { SOMATIC = 2012-01-01, ... }`; divisions not listed keep the
    no-2019 coverage."""
    starts = dict(NO_2019.coverage_starts)
    if raw is None:
        return starts
    if not isinstance(raw, dict):
        raise ValueError("coverage_starts must be a table of division = YYYY-MM-DD")
    for name, day in raw.items():
        if name not in Division.__members__:
            raise ValueError(
                f"coverage_starts: {name!r} is not a division ({', '.join(Division.__members__)})"
            )
        if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
            raise ValueError(f"coverage_starts.{name} must be a date (YYYY-MM-DD, unquoted)")
        starts[Division(name)] = day
    return starts


def load_profile(path: str | Path | None = None) -> RuleProfile:
    source = Path(path) if path else DEFAULT_PROFILE
    try:
        with source.open("rb") as handle:
            raw = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return RuleProfile(
            name=str(raw.get("name", source.stem)),
            late_admission_notice=LateAdmissionNotice(raw.get("late_admission_notice", "void")),
            cooperation_meeting_required_for=frozenset(
                Division(d) for d in raw.get("cooperation_meeting_required_for", [])
            ),
            coverage_starts=coverage(_coverage_starts(raw.get("coverage_starts"))),
        )
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: {exc}") from None
