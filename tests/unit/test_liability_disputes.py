"""The dispute rules on their own (discharge.domain.disputes): which days may be disputed,
the states, and what a statement counts as disputed."""

from __future__ import annotations

import datetime as dt

import pytest

from discharge.domain.disputes import (
    AlreadyResolved,
    Dispute,
    DisputeState,
    check_days,
    disputed_totals,
    held_days,
    parse_days,
    resolve,
    text_violations,
)

D = dt.date.fromisoformat
AT = dt.datetime(2024, 4, 2, 9, tzinfo=dt.UTC)
PAYERS = {D("2024-03-04"): "1103", D("2024-03-05"): "1103", D("2024-03-20"): "1124"}


def dispute(*days: str, state: DisputeState = DisputeState.OPEN, id_: str = "d-1") -> Dispute:
    return Dispute(id_, "81234:E1", "1103", tuple(map(D, days)), "no answer", AT, state=state)


def test_disputed_days_are_parsed_ascending() -> None:
    assert parse_days(["2024-03-05", "2024-03-04"]) == ((D("2024-03-04"), D("2024-03-05")), [])


@pytest.mark.parametrize("texts", [[], ["2024-3-4"], ["20240304"], ["2024-03-04", "2024-03-04"]])
def test_missing_malformed_or_repeated_days_name_the_days_field(texts: list[str]) -> None:
    assert [field for field, _ in parse_days(texts)[1]] == ["days"]


@pytest.mark.parametrize("text", ["", "   ", "x" * 501])
def test_a_reason_is_required_and_at_most_500_characters(text: str) -> None:
    assert [field for field, _ in text_violations("reason", text)] == ["reason"]


def test_a_reason_of_500_characters_is_accepted() -> None:
    assert text_violations("reason", "x" * 500) == []


def test_a_day_that_is_not_liable_cannot_be_disputed() -> None:
    verdict = check_days([D("2024-03-06")], PAYERS, "1103", {})
    assert [field for field, _ in verdict.violations] == ["days"]


def test_days_another_municipality_pays_are_foreign_to_the_caller() -> None:
    verdict = check_days([D("2024-03-04"), D("2024-03-20")], PAYERS, "1103", {})
    assert verdict.foreign


def test_the_payers_own_days_make_a_dispute_of_that_payer() -> None:
    verdict = check_days([D("2024-03-04"), D("2024-03-05")], PAYERS, "1103", {})
    assert (verdict.payer, verdict.violations, verdict.foreign) == ("1103", [], False)


def test_ops_disputes_for_the_one_payer_of_the_days() -> None:
    assert check_days([D("2024-03-20")], PAYERS, "", {}).payer == "1124"


def test_ops_may_not_dispute_days_of_two_payers_at_once() -> None:
    verdict = check_days([D("2024-03-04"), D("2024-03-20")], PAYERS, "", {})
    assert [field for field, _ in verdict.violations] == ["days"]


def test_a_day_held_by_an_open_dispute_cannot_be_disputed_again() -> None:
    held = held_days([dispute("2024-03-04")])
    assert check_days([D("2024-03-04")], PAYERS, "1103", held).violations != []


def test_a_rejected_dispute_holds_no_days() -> None:
    assert held_days([dispute("2024-03-04", state=DisputeState.REJECTED)]) == {}


def test_an_open_dispute_is_accepted_once() -> None:
    resolved, changed = resolve(dispute("2024-03-04"), DisputeState.ACCEPTED, "ok", "h", AT)
    assert (resolved.state, resolved.note, resolved.resolved_at, changed) == (
        DisputeState.ACCEPTED,
        "ok",
        AT,
        True,
    )


def test_the_same_resolution_again_is_a_repeat() -> None:
    accepted = dispute("2024-03-04", state=DisputeState.ACCEPTED)
    assert resolve(accepted, DisputeState.ACCEPTED, "", "h", AT) == (accepted, False)


def test_a_resolved_dispute_is_not_resolved_otherwise() -> None:
    with pytest.raises(AlreadyResolved):
        resolve(
            dispute("2024-03-04", state=DisputeState.ACCEPTED), DisputeState.REJECTED, "", "h", AT
        )


def test_disputed_totals_count_open_and_accepted_days_at_the_statements_prices() -> None:
    liable = {D("2024-03-04"): 5745, D("2024-03-05"): 5745, D("2024-03-06"): None}
    disputes = [
        dispute("2024-03-04"),
        dispute("2024-03-05", "2024-03-06", state=DisputeState.ACCEPTED, id_="d-2"),
        dispute("2024-03-04", state=DisputeState.REJECTED, id_="d-3"),
    ]
    totals = disputed_totals(disputes, liable)
    assert (totals.open_days, totals.open_nok, totals.accepted_days, totals.accepted_nok) == (
        1,
        5745,
        2,
        5745,
    )


def test_a_disputed_day_the_clock_no_longer_counts_adds_nothing() -> None:
    assert disputed_totals([dispute("2024-03-04")], {}).open_days == 0
