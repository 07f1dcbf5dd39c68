"""`overgang board`: a live terminal board (rich) of pathways by stage, running clocks
with days and NOK, overdue tasks per unit and the dead-letter count.

Stages: ListPathways once, then WatchPathways; tasks: StreamTasks per unit kind (backlog,
then live); clocks: ListRunningClocks every `interval` seconds; dead letters: the size of
overgang.dead-letter.v1 (kafka-python, end minus beginning offsets) as often. A stream
that ends is opened again at the next poll. Ctrl-C stops it (exit 0)."""

from __future__ import annotations

import datetime as dt
import queue
import time
from collections import Counter
from typing import Any

import grpc
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from overgang.config import Settings, wall_clock
from overgang.events import oslo_day
from overgang.kafka.security import kafka_python_security
from overgang.kafka.topics import DEAD_LETTER
from overgang.v1 import coordination_pb2, pathway_pb2
from tooling.clients import Clients, describe_error, pump
from tooling.statement import nok
from tooling.tasks import UNIT_KINDS, latest, per_unit

STAGES = [v.name for v in pathway_pb2.Stage.DESCRIPTOR.values if v.number]
TOP_CLOCKS = 8


def dead_letter_count(consumer: Any) -> int | None:
    """Records in the dead-letter topic (None if it does not exist yet)."""
    from kafka import TopicPartition

    partitions = consumer.partitions_for_topic(DEAD_LETTER)
    if not partitions:
        return None
    tps = [TopicPartition(DEAD_LETTER, p) for p in partitions]
    ends, starts = consumer.end_offsets(tps), consumer.beginning_offsets(tps)
    return int(sum(ends[tp] - starts[tp] for tp in tps))


class Board:
    def __init__(
        self, clients: Clients, settings: Settings, municipality: str = "", her_id: str = ""
    ) -> None:
        self.clients = clients
        self.settings = settings
        self.municipality = municipality  # only this payer's pathways, clocks and tasks
        self.her_id = her_id  # only this hospital's
        self.now = wall_clock(settings)
        self.updates: queue.Queue[Any] = queue.Queue()
        self.stages: dict[str, int] = {}  # episode id -> Stage
        self.tasks: dict[str, Any] = {}
        self.sequences: dict[str, int] = {}  # unit kind -> last sequence seen
        self.clocks: list[Any] = []
        self.dead_letters: int | None = None
        self.problems: dict[str, str] = {}  # source -> what went wrong
        self.calls: dict[str, Any] = {}  # source -> open stream
        self.consumer: Any = None
        self.polled = ""

    # ------------------------------------------------------------------ sources
    def _open(self, source: str, call: Any) -> None:
        self.calls[source] = call
        pump(call, self.updates)

    def connect(self) -> None:
        """(Re)opens every stream that is not open; the pathway watch before its listing,
        so no change between the two is lost."""
        if "pathways" not in self.calls:
            try:
                call = self.clients.pathway.WatchPathways(
                    pathway_pb2.WatchPathwaysRequest(municipality=self.municipality),
                    metadata=self.clients.md,
                )
                call.initial_metadata()  # the subscription exists from here on
                self._open("pathways", call)
                listed = self.clients.pathways(municipality=self.municipality)
                self.stages = {p.episode_id: p.stage for p in listed if self.covers(p)}
                self.problems.pop("pathways", None)
            except grpc.RpcError as error:
                self.calls.pop("pathways", None)
                self.problems["pathways"] = describe_error(error)
        for unit in UNIT_KINDS:
            if unit not in self.calls:
                self._open(unit, self.clients.task_stream(unit, self.sequences.get(unit, 0)))

    def poll(self) -> None:
        try:
            clocks = self.clients.running_clocks(municipality=self.municipality)
            self.clocks = [c for c in clocks if self.covers(c)]
            self.problems.pop("clocks", None)
        except grpc.RpcError as error:
            self.problems["clocks"] = describe_error(error)
        try:
            if self.consumer is None:
                from kafka import KafkaConsumer

                self.consumer = KafkaConsumer(
                    bootstrap_servers=self.settings.kafka_bootstrap,
                    **kafka_python_security(self.settings),
                )
            self.dead_letters = dead_letter_count(self.consumer)
            self.problems.pop("dead letters", None)
        except Exception as exc:  # kafka-python raises its own hierarchy; show, go on
            self.problems["dead letters"] = f"{type(exc).__name__}: {exc}"
        self.polled = dt.datetime.now().strftime("%H:%M:%S")

    def covers(self, item: Any) -> bool:
        """A pathway, clock or task (episode id, municipality) in the board's scope."""
        return self.municipality in ("", item.municipality) and (
            not self.her_id or item.episode_id.partition(":")[0] == self.her_id
        )

    def apply(self, item: Any) -> None:
        if isinstance(item, pathway_pb2.PathwayEvent | coordination_pb2.TaskUpdate):
            self.problems.pop("streams", None)  # a stream answers again
        if isinstance(item, pathway_pb2.PathwayEvent):
            if self.covers(item.pathway):
                self.stages[item.episode_id] = item.pathway.stage
        elif isinstance(item, coordination_pb2.TaskUpdate):
            if self.covers(item.task):
                latest(self.tasks, item.task)
            unit = item.task.unit.partition("/")[0]
            self.sequences[unit] = max(self.sequences.get(unit, 0), item.sequence)
        elif isinstance(item, grpc.RpcError):
            self.problems["streams"] = describe_error(item)
        elif item is None:  # a stream ended: open it again at the next poll
            ended = [s for s, c in self.calls.items() if not c.is_active()]
            for source in ended:
                del self.calls[source]

    def close(self) -> None:
        for call in self.calls.values():
            call.cancel()
        if self.consumer is not None:
            self.consumer.close()

    # ------------------------------------------------------------------ view
    def render(self) -> Group:
        now = self.now()
        stages = Counter(self.stages.values())
        stage_table = Table(title="pathways by stage", title_justify="left")
        stage_table.add_column("stage")
        stage_table.add_column("pathways", justify="right")
        for name in STAGES:
            stage_table.add_row(
                name.removeprefix("STAGE_"), str(stages[pathway_pb2.Stage.Value(name)])
            )

        clocks = sorted(self.clocks, key=lambda c: (-c.liable_days, c.episode_id))
        clock_table = Table(
            title=f"running clocks: {len(clocks)}, {sum(c.liable_days for c in clocks)} days, "
            f"NOK {nok(sum(c.amount_nok for c in clocks))}",
            title_justify="left",
        )
        for column in ("episode", "payer", "since", "days", "NOK"):
            clock_table.add_column(column, justify="left" if column == "episode" else "right")
        for c in clocks[:TOP_CLOCKS]:
            clock_table.add_row(
                c.episode_id, c.municipality, c.start, str(c.liable_days), nok(c.amount_nok)
            )

        units = {u: n for u, n in per_unit(self.tasks.values(), now).items() if n.active}
        unit_table = Table(title="open tasks per unit", title_justify="left")
        for column in ("unit", "open", "overdue", "escalated"):
            unit_table.add_column(column, justify="left" if column == "unit" else "right")
        for unit, n in units.items():
            unit_table.add_row(unit, str(n.active), str(n.overdue), str(n.escalated))

        dead = "-" if self.dead_letters is None else str(self.dead_letters)
        header = Text(
            f"Overgang board  today {oslo_day(now)}  polled {self.polled or '-'}"
            f"  dead letters: {dead}  (Ctrl-C to quit)",
            style="bold",
        )
        problems = [Text(f"{s}: {p}", style="red") for s, p in sorted(self.problems.items())]
        return Group(header, stage_table, clock_table, unit_table, *problems)

    # ------------------------------------------------------------------ loop
    def run(self, console: Console, interval: float) -> None:
        next_poll = 0.0
        with Live(self.render(), console=console, auto_refresh=False) as live:
            while True:
                if time.monotonic() >= next_poll:
                    self.connect()
                    self.poll()
                    next_poll = time.monotonic() + interval
                try:
                    self.apply(self.updates.get(timeout=0.5))
                    while True:
                        self.apply(self.updates.get_nowait())
                except queue.Empty:
                    pass
                live.update(self.render(), refresh=True)


def run_board(
    settings: Settings,
    token: str | None,
    interval: float = 5.0,
    municipality: str = "",
    her_id: str = "",
) -> int:
    clients = Clients(settings, token)
    board = Board(clients, settings, municipality, her_id)
    console = Console()
    try:
        board.run(console, interval)
    except KeyboardInterrupt:
        pass
    finally:
        board.close()
        clients.close()
    console.print("board stopped")
    return 0
