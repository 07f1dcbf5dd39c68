"""`overgang board` without services: what it shows from the updates it receives."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kafka import TopicPartition
from rich.console import Console

from overgang.config import Settings
from overgang.kafka.topics import DEAD_LETTER
from overgang.v1 import coordination_pb2, liability_pb2, pathway_pb2
from tooling.board import Board, dead_letter_count


def pathway_event(episode: str, stage: int) -> Any:
    return pathway_pb2.PathwayEvent(
        episode_id=episode, pathway=pathway_pb2.Pathway(episode_id=episode, stage=stage)
    )


def task_update(task_id: str, unit: str, due: dt.datetime, sequence: int, **extra: Any) -> Any:
    task = coordination_pb2.Task(task_id=task_id, unit=unit, **extra)
    task.due_at.FromDatetime(due)
    return coordination_pb2.TaskUpdate(task=task, sequence=sequence)


def clock(episode: str, municipality: str, start: str, days: int) -> Any:
    return liability_pb2.EpisodeStatement(
        episode_id=episode,
        municipality=municipality,
        start=start,
        liable_days=days,
        amount_nok=days * 5745,
    )


class Finished:
    def is_active(self) -> bool:
        return False

    def cancel(self) -> None:
        pass


def shown(board: Board) -> str:
    console = Console(record=True, width=120)
    console.print(board.render())
    return console.export_text()


def test_the_board_shows_stages_clocks_overdue_tasks_and_dead_letters() -> None:
    board = Board(clients=None, settings=Settings(clock_date="2024-04-01"))  # type: ignore[arg-type]
    for n in range(3):
        board.apply(pathway_event(f"80001:{n}", pathway_pb2.STAGE_DISCHARGE_READY))
    board.apply(pathway_event("80001:0", pathway_pb2.STAGE_RECEIVED))  # a later change wins
    march, may = dt.datetime(2024, 3, 20, tzinfo=dt.UTC), dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    open_ = coordination_pb2.TASK_STATUS_OPEN
    board.apply(task_update("t1", "HOME_CARE", march, 4, status=open_, version=1))
    board.apply(task_update("t1", "HOME_CARE", march, 7, status=open_, version=2, escalated=True))
    board.apply(
        task_update("t1", "HOME_CARE", march, 5, status=open_, version=1)
    )  # older: kept out
    board.apply(task_update("t2", "HOME_CARE", may, 8, status=open_, version=1))
    board.apply(task_update("t3", "NAV", march, 9, status=coordination_pb2.TASK_STATUS_DONE))
    board.clocks = [
        clock("80001:1", "1103", "2024-03-25", 7),
        clock("80001:2", "1108", "2024-03-30", 2),
    ]
    board.dead_letters = 3
    text = shown(board)
    assert "today 2024-04-01" in text and "dead letters: 3" in text
    assert "│ DISCHARGE_READY │        2 │" in text and "│ RECEIVED        │        1 │" in text
    assert "running clocks: 2, 9 days, NOK 51 705" in text
    assert text.index("80001:1") < text.index("80001:2")  # the longest first
    assert "│ HOME_CARE │    2 │       1 │         1 │" in text  # open, overdue, escalated
    assert "NAV" not in text  # no open task
    assert board.sequences == {"HOME_CARE": 8, "NAV": 9}  # where the streams resume


def test_an_ended_stream_is_opened_again_and_problems_are_shown() -> None:
    board = Board(clients=None, settings=Settings(clock_date="2024-04-01"))  # type: ignore[arg-type]
    board.calls = {"pathways": Finished()}
    board.apply(None)
    assert board.calls == {}
    board.problems["clocks"] = "UNAVAILABLE: discharge is down"
    assert "clocks: UNAVAILABLE: discharge is down" in shown(board)


class Consumer:
    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return {0, 1} if topic == DEAD_LETTER else None

    def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 10 + tp.partition for tp in tps}

    def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 4 for tp in tps}


class NoTopic(Consumer):
    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return None


def test_the_dead_letter_count_is_the_topic_size() -> None:
    assert dead_letter_count(Consumer()) == (10 - 4) + (11 - 4)
    assert dead_letter_count(NoTopic()) is None
