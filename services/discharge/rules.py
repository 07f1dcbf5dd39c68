"""Loads the rate table and rule profile from TOML (package defaults or operator files)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from discharge.domain.profile import LateAdmissionNotice, RuleProfile
from discharge.domain.rates import RateTable
from overgang.events import Division

DATA = Path(__file__).parent / "data"
DEFAULT_RATES = DATA / "rates-no.toml"
DEFAULT_PROFILE = DATA / "profile-no-2019.toml"


class ConfigError(ValueError):
    pass


def load_rates(path: str | Path | None = None) -> RateTable:
    source = Path(path) if path else DEFAULT_RATES
    with source.open("rb") as handle:
        raw = tomllib.load(handle).get("rates", {})
    rates: dict[int, int] = {}
    for year, amount in raw.items():
        if not (str(year).isdigit() and len(str(year)) == 4):
            raise ConfigError(f"{source}: rate year {year!r} is not a four-digit year")
        if not isinstance(amount, int) or amount <= 0:
            raise ConfigError(f"{source}: rate for {year} must be a positive whole NOK amount")
        rates[int(year)] = amount
    return RateTable(rates, source=str(source))


def load_profile(path: str | Path | None = None) -> RuleProfile:
    source = Path(path) if path else DEFAULT_PROFILE
    with source.open("rb") as handle:
        raw = tomllib.load(handle)
    try:
        return RuleProfile(
            name=str(raw.get("name", source.stem)),
            late_admission_notice=LateAdmissionNotice(raw.get("late_admission_notice", "void")),
            cooperation_meeting_required_for=frozenset(
                Division(d) for d in raw.get("cooperation_meeting_required_for", [])
            ),
        )
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
