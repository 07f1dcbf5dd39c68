"""The sla, statement and report views on hand-made service answers (no services)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from typing import Any

import pytest

from overgang.events import OSLO
from overgang.v1 import events_pb2, liability_pb2, pathway_pb2
from tooling import report, sla, statement
from tooling.month import MonthData, Scope, parse_month
from tooling.views import default_dispute_id

RATE = 5745


def at(day: int, hour: int, month: int = 3) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, tzinfo=OSLO)


def pathway(
    episode: str, notice: dt.datetime, left: dt.datetime | None, to: int, municipality: str = "1103"
) -> Any:
    p = pathway_pb2.Pathway(
        episode_id=episode, municipality=municipality, division=events_pb2.SOMATIC
    )
    steps = [(0, pathway_pb2.STAGE_ADMITTED, notice - dt.timedelta(days=2), "a", "admitted")]
    steps.append((1, pathway_pb2.STAGE_DISCHARGE_READY, notice, "n", "discharge-ready notice"))
    if left is not None:
        reason = "died" if to == pathway_pb2.STAGE_CLOSED else "discharged to HOME"
        steps.append((2, to, left, "d", reason))
    previous = pathway_pb2.STAGE_UNSPECIFIED
    for _, stage, when, cause, reason in steps:
        change = p.history.add(
            from_stage=previous, to_stage=stage, cause_event_id=f"{episode}:{cause}", reason=reason
        )
        change.at.FromDatetime(when.astimezone(dt.UTC))
        previous = stage
    p.stage = previous
    return p


def period(
    episode: str, start: str, end: str, cause: str, days: list[str], *answered: dt.datetime
) -> Any:
    p = liability_pb2.Period(
        notice_event_id=f"{episode}:n",
        status=liability_pb2.ENDED if end else liability_pb2.RUNNING,
        start=start,
        end=end,
        end_cause=cause,
        municipality="1103",
        days=len(days),
        amount_nok=RATE * len(days),
        evidence=liability_pb2.Evidence(
            started_by=f"{episode}:n", ended_by=f"{episode}:e" if end else "", answers=["ans-1"]
        ),
    )
    for n, when in enumerate(answered, start=1):
        p.evidence.answer_times.add(event_id=f"ans-{n}").occurred_at.FromDatetime(
            when.astimezone(dt.UTC)
        )
    return p


def days_of(*dates: str, pending: bool = False) -> list[Any]:
    return [
        liability_pb2.LiableDay(date=d, amount_nok=0 if pending else RATE, rate_pending=pending)
        for d in dates
    ]


@pytest.fixture
def data() -> MonthData:
    """A waits 3 days for service ready (day 1 = 4 March) and leaves on the 8th; B is
    received on the ready day; C died; D's clock still runs (2 days, one rate-pending).
    The municipality answered A after 6 hours, B after 2, C after 12; D not yet."""
    month = MonthData(Scope("2024-03"), at(1, 0, month=4))
    month.pathways = [
        pathway("80001:A", at(4, 10), at(8, 10), pathway_pb2.STAGE_RECEIVED),
        pathway("80001:B", at(5, 9), at(5, 15), pathway_pb2.STAGE_RECEIVED, "1108"),
        pathway("80001:C", at(6, 9), at(7, 9), pathway_pb2.STAGE_CLOSED),
        pathway("80001:D", at(30, 9), None, 0),
    ]
    a_days = ["2024-03-04", "2024-03-05", "2024-03-06"]
    periods = {
        "80001:A": period(
            "80001:A", "2024-03-04", "2024-03-07", "SERVICE_READY", a_days, at(4, 16)
        ),
        "80001:B": period("80001:B", "2024-03-05", "2024-03-05", "DISCHARGED", [], at(5, 11)),
        "80001:C": period("80001:C", "2024-03-06", "2024-03-07", "DIED", ["2024-03-06"], at(6, 21)),
        "80001:D": period("80001:D", "2024-03-30", "", "", ["2024-03-30", "2024-03-31"]),
    }
    for episode, p in periods.items():
        month.statements[episode] = liability_pb2.EpisodeStatement(
            episode_id=episode, liable_days=p.days, amount_nok=p.amount_nok, periods=[p]
        )
    lines = [
        ("80001:A", days_of(*a_days)),
        ("80001:C", days_of("2024-03-06")),
        ("80001:D", days_of("2024-03-30") + days_of("2024-03-31", pending=True)),
    ]
    month.monthly = [
        liability_pb2.MonthlyStatement(
            municipality="1103",
            month="2024-03",
            as_of="2024-04-01",
            lines=[
                liability_pb2.MonthlyStatementLine(
                    episode_id=e,
                    municipality="1103",
                    days=d,
                    liable_days=len(d),
                    pending_days=sum(x.rate_pending for x in d),
                    amount_nok=sum(x.amount_nok for x in d),
                    periods=[periods[e]],
                )
                for e, d in lines
            ],
        )
    ]
    return month


def test_parse_month() -> None:
    assert parse_month("2024-12") == (dt.date(2024, 12, 1), dt.date(2025, 1, 1))
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_month("2024-13")


def test_episode_figures_come_from_history_and_statement(data: MonthData) -> None:
    a, b, c, d = sla.episodes(data)
    assert (a.to_service_ready, round(a.to_discharge or 0, 2), a.received_same_day) == (
        3.0,
        4.0,
        False,
    )
    assert (b.ready_day, b.received_same_day, b.liable_days) == (dt.date(2024, 3, 5), True, 0)
    assert (c.discharged_at, c.received, c.to_service_ready) == (None, False, None)  # died
    assert (d.discharged_at, d.liable_days) == (None, 2)


def test_groups_medians_p90_and_received_same_day(data: MonthData) -> None:
    everyone, *rest = sla.groups(sla.episodes(data))
    assert everyone["patients"] == 4
    assert everyone["toServiceReadyDays"] == {"n": 1, "median": 3.0, "p90": 3.0}
    assert everyone["toDischargeDays"]["n"] == 2  # A and B; C died, D is still in hospital
    assert everyone["liableDaysPerEpisode"] == {
        "n": 4,
        "median": 1.5,
        "p90": 3.0,
        "mean": 1.5,
        "max": 3,
        "total": 6,
    }
    assert everyone["receivedSameDay"] == {"received": 2, "sameDay": 1, "share": 0.5}
    # 2, 6 and 12 hours; D has no answer yet
    assert everyone["toAnswerDays"] == {"n": 3, "median": 0.2, "p90": 0.5}
    assert [g["group"] for g in rest] == ["1103", "1108", "SOMATIC", "1103 SOMATIC", "1108 SOMATIC"]
    assert sla.p90([float(n) for n in range(1, 11)]) == 9.0


def test_sla_text_and_json(data: MonthData) -> None:
    out = io.StringIO()
    sla.write_sla(sla.sla_json(data), out)
    assert re.search(r"^all\s+4\s+0.2 / 0.5\s+3 / 3\s", out.getvalue(), re.M), out.getvalue()
    assert re.search(r"^1108\s+1\s+0.1 / 0.1\s+-\s", out.getvalue(), re.M), out.getvalue()
    out = io.StringIO()
    sla.write_sla_json(sla.sla_json(data), out)
    assert json.loads(out.getvalue())["groups"][0]["toAnswerDays"]["n"] == 3


def answered(*answers: dt.datetime) -> sla.EpisodeSla:
    """Episode A (notice 4 March 10:00) with these answers in its period's evidence."""
    p = pathway("80001:A", at(4, 10), None, 0)
    s = liability_pb2.EpisodeStatement(
        episode_id="80001:A",
        periods=[period("80001:A", "2024-03-04", "", "", [], *answers)],
    )
    return sla.episode_sla(p, s)


def test_time_to_answer_counts_from_the_notice_to_the_first_answer_after_it() -> None:
    assert answered(at(4, 16), at(5, 10)).to_answer == 0.25


def test_time_to_answer_an_answer_before_the_notice_does_not_count() -> None:
    assert answered(at(4, 9), at(4, 22)).to_answer == 0.5


def test_time_to_answer_no_answer_yet_is_left_out_not_zero() -> None:
    group = [answered(), answered(at(5, 10))]
    assert sla.figures("all", group)["toAnswerDays"] == {"n": 1, "median": 1.0, "p90": 1.0}


def test_time_to_answer_counts_across_the_change_to_summer_time() -> None:
    # Notice Saturday 30 March 12:00 CET, answer Sunday 12:00 CEST: 23 hours passed.
    p = pathway("80001:A", at(30, 12), None, 0)
    s = liability_pb2.EpisodeStatement(
        episode_id="80001:A", periods=[period("80001:A", "2024-03-30", "", "", [], at(31, 12))]
    )
    assert sla.episode_sla(p, s).to_answer == 23 / 24


def test_time_to_discharge_counts_across_the_change_to_summer_time() -> None:
    p = pathway("80001:A", at(30, 12), at(31, 12), pathway_pb2.STAGE_RECEIVED)
    assert sla.episode_sla(p, None).to_discharge == 23 / 24


def test_statement_rows_dates_rates_and_evidence(data: MonthData) -> None:
    rows = list(statement.rows(data))
    assert [(r.line.episode_id, len(r.days), r.rate, r.pending, r.amount) for r in rows] == [
        ("80001:A", 3, str(RATE), 0, 3 * RATE),
        ("80001:C", 1, str(RATE), 0, RATE),
        ("80001:D", 2, str(RATE), 1, RATE),
    ]
    assert statement.date_ranges(rows[0].days) == "2024-03-04/2024-03-06"
    gap = days_of("2024-03-01", "2024-03-02", "2024-03-05")
    assert statement.date_ranges(gap) == "2024-03-01/2024-03-02;2024-03-05"
    assert statement.totals(data) == {
        "episodes": 3,
        "liableDays": 6,
        "pendingDays": 1,
        "amountNok": 5 * RATE,
        "disputedOpenDays": 0,
        "disputedOpenNok": 0,
        "disputedAcceptedDays": 0,
        "disputedAcceptedNok": 0,
    }


def test_statement_csv_has_one_header_and_totals_on_stderr(data: MonthData) -> None:
    out, err = io.StringIO(), io.StringIO()
    statement.write_csv(data, out, err, ";")
    rows = list(csv.reader(io.StringIO(out.getvalue()), delimiter=";"))
    assert tuple(rows[0]) == statement.CSV_COLUMNS and len(rows) == 4
    first = dict(zip(statement.CSV_COLUMNS, rows[1], strict=True))
    assert first["dates"] == "2024-03-04/2024-03-06" and first["end_event_id"] == "80001:A:e"
    assert first["answer_event_ids"] == "ans-1" and first["notice_event_id"] == "80001:A:n"
    assert "6 liable days (1 rate-pending), NOK 28725" in err.getvalue()


def test_statement_json_and_table(data: MonthData) -> None:
    body = statement.statement_json(data)
    assert (body["liableDays"], body["pendingDays"], body["amountNok"]) == (6, 1, 5 * RATE)
    running = body["lines"][2]["periods"][0]
    assert running["evidence"]["end"] == "" and running["days"][1]["ratePending"] is True
    out = io.StringIO()
    statement.write_table(data, out)
    assert "total: 3 episodes, 6 liable days (1 rate-pending), NOK 28 725" in out.getvalue()
    assert "notice 80001:A:n; answers ans-1; end SERVICE_READY 80001:A:e" in out.getvalue()


def test_report_is_one_self_contained_page(data: MonthData) -> None:
    page = report.render(data)
    assert page.count("<svg") == 4 and "<script" not in page
    assert not re.search(r'(src|href)="', page)
    weeks, days, amounts = report.per_week(data)
    assert weeks[0] == "W9 1-3.3" and weeks[-1] == "W13 25-31.3"
    assert days == {"1103": [0, 4, 0, 0, 2]} and amounts["1103"][-1] == RATE
    assert report.waits(sla.episodes(data))[:5] == [1, 0, 0, 0, 1]  # B on day 0, A on day 4


def _disputed(data: MonthData) -> MonthData:
    """Stavanger disputes two of A's days (open) and C's day (accepted by the hospital)."""
    a, c, _d = data.monthly[0].lines
    a.disputes.add(
        dispute_id="d-1",
        episode_id=a.episode_id,
        municipality="1103",
        days=["2024-03-04", "2024-03-05"],
        reason="answered on the 4th",
        state=liability_pb2.DISPUTE_OPEN,
    )
    a.disputed_open_days, a.disputed_open_nok = 2, 2 * RATE
    c.disputes.add(
        dispute_id="d-2",
        episode_id=c.episode_id,
        municipality="1103",
        days=["2024-03-06"],
        reason="died before noon",
        state=liability_pb2.DISPUTE_ACCEPTED,
        resolution_note="agreed",
    )
    c.disputed_accepted_days, c.disputed_accepted_nok = 1, RATE
    return data


def test_statement_table_shows_disputes_beside_the_liable_days(data: MonthData) -> None:
    out = io.StringIO()
    statement.write_table(_disputed(data), out)
    text = out.getvalue()
    assert "dispute d-1 OPEN 2024-03-04/2024-03-05: answered on the 4th" in text
    assert "total: 3 episodes, 6 liable days (1 rate-pending), NOK 28 725" in text
    assert "disputed: open 2 days NOK 11 490, accepted 1 days NOK 5 745" in text


def test_statement_csv_has_the_disputed_days_of_each_row(data: MonthData) -> None:
    out, err = io.StringIO(), io.StringIO()
    statement.write_csv(_disputed(data), out, err)
    rows = [
        dict(zip(statement.CSV_COLUMNS, r, strict=True))
        for r in csv.reader(io.StringIO(out.getvalue()))
    ][1:]
    assert [
        (r["liable_days"], r["disputed_open_days"], r["disputed_accepted_nok"], r["dispute_ids"])
        for r in rows
    ] == [
        ("3", "2", "0", "d-1:OPEN"),
        ("1", "0", str(RATE), "d-2:ACCEPTED"),
        ("2", "0", "0", ""),
    ]


def test_statement_json_lists_each_episodes_disputes_and_the_totals(data: MonthData) -> None:
    body = statement.statement_json(_disputed(data))
    assert (body["liableDays"], body["disputedOpenNok"], body["disputedAcceptedDays"]) == (
        6,
        2 * RATE,
        1,
    )
    assert body["lines"][1]["disputes"] == [
        {
            "disputeId": "d-2",
            "municipality": "1103",
            "days": ["2024-03-06"],
            "reason": "died before noon",
            "state": "ACCEPTED",
            "note": "agreed",
        }
    ]


def test_a_dispute_command_run_again_sends_the_same_dispute_id() -> None:
    first = default_dispute_id("80001:A", ["2024-03-05", "2024-03-04"], "late answer")
    again = default_dispute_id("80001:A", ["2024-03-04", "2024-03-05"], "late answer")
    assert (first == again, first == default_dispute_id("80001:A", ["2024-03-04"], "x")) == (
        True,
        False,
    )


def test_statement_lists_the_corrections_since_the_date_asked(data: MonthData) -> None:
    data.monthly[0].corrections_since = "2024-04-01"
    data.monthly[0].lines[0].corrections.add(
        event_id="80001:A:corrected:ans-2",
        cause_event_id="ans-2",
        as_of="2024-04-03",
        reversed=days_of("2024-03-06"),
        delta_nok=-RATE,
    )
    out = io.StringIO()
    statement.write_table(data, out)
    assert "    80001:A as of 2024-04-03 cause ans-2: -1 +0 days, NOK -5745" in out.getvalue()
    assert statement.statement_json(data)["corrections"][0]["reversed"] == ["2024-03-06"]
