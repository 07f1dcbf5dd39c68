"""Rule 5, rate-pending days: a liable day in a year without a rate still counts; it is
shown, not priced, and when the rate is added the amount follows as a correction."""

from __future__ import annotations

import dataclasses
import datetime as dt

from discharge.domain.liability_diff import ChangeKind, liability_diff
from discharge.domain.live_clock import ClockEntry, Rules, apply_rates, apply_tick
from discharge.domain.profile import NO_2019
from discharge.domain.rates import MissingRate, RateTable

from .episode_story import RATES, Episode, at

WITH_2025 = dataclasses.replace(RATES, nok_per_day={**RATES.nok_per_day, 2025: 6000})


def across_new_year() -> Episode:
    return (
        Episode()
        .admission_notice(at("2024-12-01"))
        .discharge_ready(at("2024-12-30"))
        .service_ready(at("2025-01-03"))
    )


def test_a_day_in_a_year_without_a_rate_is_liable_but_not_priced() -> None:
    statement = across_new_year().statement(as_of="2025-02-01")
    assert (statement.liable_days, statement.pending_days, statement.amount_nok) == (
        4,
        2,
        2 * 5_745,
    )


def test_the_totals_in_one_pass_are_the_liable_pending_and_priced_days() -> None:
    statement = across_new_year().statement(as_of="2025-02-01")
    assert statement.totals() == (4, 2, 2 * 5_745)


def test_a_rate_pending_day_has_no_amount() -> None:
    days = across_new_year().statement(as_of="2025-02-01").days
    assert [(d.date.isoformat(), d.amount_nok) for d in days[-2:]] == [
        ("2025-01-01", None),
        ("2025-01-02", None),
    ]


def test_the_period_and_the_statement_flag_rate_pending_days() -> None:
    statement = across_new_year().statement(as_of="2025-02-01")
    assert (statement.rate_pending, statement.periods[0].rate_pending) == (True, True)


def test_a_statement_with_every_rate_known_is_not_rate_pending() -> None:
    statement = across_new_year().statement(as_of="2025-02-01", rates=WITH_2025)
    assert (statement.rate_pending, statement.pending_years) == (False, ())


def test_the_statement_names_the_years_whose_rate_is_missing() -> None:
    assert across_new_year().statement(as_of="2025-02-01").pending_years == (2025,)


def test_the_period_counts_pending_days_apart_from_priced_days() -> None:
    period = across_new_year().statement(as_of="2025-02-01").periods[0]
    assert (period.liable_days, period.pending_days, period.amount_nok) == (4, 2, 11_490)


def test_the_rate_table_lists_the_years_it_covers() -> None:
    table = RateTable({2024: 5745, 2012: 4000, 2014: 4255})
    assert table.years() == (2012, 2014, 2024)


def test_the_rate_table_lists_the_missing_years_of_a_span() -> None:
    assert RATES.missing_years(2012, 2026) == (2013, 2025, 2026)


def test_the_missing_rate_message_names_the_option_and_the_variable() -> None:
    message = str(MissingRate(2025))
    assert ("2025" in message, "--rates" in message, "OVERGANG_RATES_FILE" in message) == (
        True,
        True,
        True,
    )


def test_adding_the_rate_turns_pending_days_into_a_correction() -> None:
    story = across_new_year()
    pending = story.statement(as_of="2025-02-01")
    now_priced = story.statement(as_of="2025-02-01", rates=WITH_2025)
    [change] = liability_diff(pending, now_priced, "rates-new")
    assert (
        change.kind,
        [(d.date.day, d.amount_nok) for d in change.reversed],
        [(d.date.day, d.amount_nok) for d in change.added],
        change.delta_nok,
        change.delta_pending_days,
    ) == (ChangeKind.CORRECTED, [(1, None), (2, None)], [(1, 6000), (2, 6000)], 12_000, -2)


def test_the_live_clock_announces_a_new_rate_table_as_one_correction() -> None:
    story = across_new_year()
    entry = ClockEntry(story.episode_id, 0, dt.date(2024, 12, 1), tuple(story.events))
    entry = apply_tick(entry, dt.date(2025, 1, 10), Rules(RATES, NO_2019)).entry
    outcome = apply_rates(entry, Rules(WITH_2025, NO_2019))
    assert [(c.kind, c.delta_nok) for c in outcome.changes] == [(ChangeKind.CORRECTED, 12_000)]
