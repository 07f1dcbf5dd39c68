"""Rule 6, coverage by division and date: psychiatry (MENTAL_HEALTH) and TSB
(SUBSTANCE_USE) are covered from 2019-01-01; earlier days in those divisions are not
liable, and the period says why. The dates are profile data."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from discharge.domain.profile import NO_2019
from discharge.domain.statement import PeriodStatus
from discharge.rules import ConfigError, load_profile
from overgang.events import Division

from .episode_story import Episode, at, days


def across_2019(division: Division) -> Episode:
    return (
        Episode(division=division)
        .admission_notice(at("2018-12-20"))
        .discharge_ready(at("2018-12-30"))
        .discharged(at("2019-01-03"))
    )


@pytest.mark.parametrize("division", [Division.MENTAL_HEALTH, Division.SUBSTANCE_USE])
def test_mental_health_and_tsb_days_before_2019_are_not_liable(division: Division) -> None:
    assert days(across_2019(division).statement()) == ["2019-01-01", "2019-01-02"]


def test_somatic_days_before_2019_are_liable() -> None:
    assert days(across_2019(Division.SOMATIC).statement())[:2] == ["2018-12-30", "2018-12-31"]


def test_a_period_with_days_before_the_coverage_start_says_why() -> None:
    period = across_2019(Division.MENTAL_HEALTH).statement().periods[0]
    assert period.not_liable_reason == "NOT_COVERED_BEFORE_2019-01-01"


def test_a_period_wholly_before_the_coverage_start_ends_with_no_days_and_the_reason() -> None:
    story = (
        Episode(division=Division.SUBSTANCE_USE)
        .admission_notice(at("2018-03-01"))
        .discharge_ready(at("2018-03-04"))
        .service_ready(at("2018-03-10"))
    )
    period = story.statement().periods[0]
    assert (period.status, period.liable_days, period.not_liable_reason) == (
        PeriodStatus.ENDED,
        0,
        "NOT_COVERED_BEFORE_2019-01-01",
    )


def test_a_period_after_the_coverage_start_has_no_not_liable_reason() -> None:
    story = (
        Episode(division=Division.MENTAL_HEALTH)
        .admission_notice(at("2024-03-01"))
        .discharge_ready(at("2024-03-04"))
        .discharged(at("2024-03-06"))
    )
    assert story.statement().periods[0].not_liable_reason is None


def test_coverage_starts_are_profile_data_not_code() -> None:
    later = dataclasses.replace(
        NO_2019,
        coverage_starts=((Division.MENTAL_HEALTH, dt.date(2019, 1, 2)),),
    )
    assert days(across_2019(Division.MENTAL_HEALTH).statement(profile=later)) == ["2019-01-02"]


def test_the_default_profile_file_holds_the_coverage_starts() -> None:
    assert dict(load_profile().coverage_starts) == {
        Division.SOMATIC: dt.date(2012, 1, 1),
        Division.MENTAL_HEALTH: dt.date(2019, 1, 1),
        Division.SUBSTANCE_USE: dt.date(2019, 1, 1),
    }


def test_a_profile_file_can_move_a_coverage_start(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("coverage_starts = { MENTAL_HEALTH = 2020-01-01 }\n")
    assert load_profile(path).coverage_start(Division.MENTAL_HEALTH) == dt.date(2020, 1, 1)


def test_a_profile_file_without_coverage_starts_keeps_the_no_2019_dates(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('late_admission_notice = "void"\n')
    assert load_profile(path).coverage_starts == NO_2019.coverage_starts


@pytest.mark.parametrize(
    "text",
    [
        "coverage_starts = { PSYCHIATRY = 2019-01-01 }\n",
        'coverage_starts = { MENTAL_HEALTH = "2019-01-01" }\n',
        "coverage_starts = { MENTAL_HEALTH = 2019-01-01T00:00:00 }\n",
        "coverage_starts = 2019\n",
        "coverage_starts = {\n",
    ],
    ids=["unknown-division", "quoted-date", "datetime", "not-a-table", "bad-toml"],
)
def test_a_bad_coverage_start_is_a_configuration_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"p\.toml"):
        load_profile(path)
