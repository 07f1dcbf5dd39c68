"""Corrections since the last statement: the worker records each CORRECTED event it
announces (once per id), and a monthly statement with `corrections_since` lists those
made after that date, of the month's days."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from discharge.corrections_store import Correction, CorrectionLog
from discharge.domain.statement import LiableDay
from discharge.monthly import add_corrections
from discharge.runtime import MIGRATIONS
from overgang.grpc.auth import bearer
from overgang.sql.engine import make_engine
from overgang.sql.migrations import migrate
from overgang.v1 import liability_pb2 as pb
from overgang.v1 import liability_pb2_grpc

from .episode_story import Episode, at
from .test_discharge_worker import NOW, Harness, _event_record, _run
from .test_liability_disputes_grpc import World, serving

RATE = 5745
D = dt.date.fromisoformat


def _story() -> Episode:
    return (
        Episode("81234:E1")
        .admission_notice(at("2024-03-01"))
        .discharge_ready(at("2024-03-04"))
        .service_ready(at("2024-03-07"))
    )


def _recording(tmp_path: Path) -> tuple[Harness, CorrectionLog]:
    engine = make_engine(f"sqlite:///{tmp_path / 'discharge.db'}")
    migrate(engine, MIGRATIONS)
    log = CorrectionLog(engine)
    return Harness(corrections=log), log


def _march(log: CorrectionLog, since: str) -> list[Correction]:
    return log.after(D(since), D("2024-03-01"), D("2024-03-31"))


def test_a_late_answer_is_recorded_as_a_correction_of_the_days_it_reverses(
    tmp_path: Path,
) -> None:
    harness, log = _recording(tmp_path)
    story = _story()
    for event in story.events:
        _run(harness, _event_record(event))
    late = story.answer(at("2024-03-05"), can_receive=True).events[-1]
    _run(harness, _event_record(late))
    # (The service-ready event, applied after the clock ran to today, is one too.)
    [correction] = [c for c in _march(log, "2024-03-09") if c.cause_event_id == late.event_id]
    assert ([d.date.isoformat() for d in correction.reversed], correction.as_of) == (
        ["2024-03-05", "2024-03-06"],
        NOW.date(),
    )


def test_corrections_on_or_before_the_since_date_are_not_listed(tmp_path: Path) -> None:
    harness, log = _recording(tmp_path)
    story = _story()
    for event in [*story.events, story.answer(at("2024-03-05"), can_receive=True).events[-1]]:
        _run(harness, _event_record(event))
    assert _march(log, NOW.date().isoformat()) == []


def test_a_correction_recorded_twice_is_one_row(tmp_path: Path) -> None:
    _harness, log = _recording(tmp_path)
    correction = _march_change()
    log.put_many([correction, correction], NOW)
    log.put_many([correction], NOW)
    assert len(_march(log, "2024-03-01")) == 1


def _march_change() -> Any:
    from discharge.domain.liability_diff import ChangeKind, LiabilityChange

    change = LiabilityChange(
        "81234:E1:corrected:ev-9",
        ChangeKind.CORRECTED,
        "81234:E1",
        "1103",
        reversed=(LiableDay(D("2024-03-05"), RATE),),
        cause_event_id="ev-9",
    )
    return (change, D("2024-04-02"))


def test_an_episode_left_without_days_in_the_month_has_a_line_for_its_correction() -> None:
    correction = Correction(
        "81234:E9:corrected:ev-9",
        "81234:E9",
        "1103",
        D("2024-04-02"),
        "ev-9",
        (LiableDay(D("2024-03-30"), RATE), LiableDay(D("2024-04-01"), RATE)),
        (),
    )
    lines: list[pb.MonthlyStatementLine] = []
    add_corrections(
        lines, [correction], pb.GetMonthlyStatementRequest(municipality="1103", month="2024-03")
    )
    [line] = lines
    assert (
        line.liable_days,
        [c.delta_nok for c in line.corrections],
        len(line.corrections[0].reversed),
    ) == (
        0,
        [-RATE],
        1,
    )


def test_another_payers_correction_is_not_in_a_municipalitys_statement() -> None:
    correction = Correction(
        "e", "81234:E9", "1124", D("2024-04-02"), "ev-9", (LiableDay(D("2024-03-30"), RATE),), ()
    )
    lines: list[pb.MonthlyStatementLine] = []
    add_corrections(
        lines, [correction], pb.GetMonthlyStatementRequest(municipality="1103", month="2024-03")
    )
    assert lines == []


def test_the_monthly_statement_lists_the_corrections_since_the_date_given(tmp_path: Path) -> None:
    world = World(tmp_path)
    log = CorrectionLog(world.engine)
    log.put_many([_march_change()], NOW)
    servicer = world.servicer()
    servicer.corrections = log

    async def main() -> list[Any]:
        async with serving(servicer) as server:
            import grpc

            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = liability_pb2_grpc.LiabilityServiceStub(channel)
                answers = []
                for since in ("2024-04-01", "2024-04-02", ""):
                    request = pb.GetMonthlyStatementRequest(
                        municipality="1103", month="2024-03", corrections_since=since
                    )
                    answers.append(
                        await stub.GetMonthlyStatement(request, metadata=bearer("t-ops"))
                    )
                return answers

    after, same_day, none = asyncio.run(main())
    world.engine.dispose()
    assert (
        [len(line.corrections) for line in after.lines],
        after.corrections_delta_nok,
        [len(line.corrections) for line in same_day.lines],
        [len(line.corrections) for line in none.lines],
    ) == ([1], -RATE, [0], [0])
