"""DisputeDays and ResolveDispute over gRPC on in-process servers (the clock fed by the
worker, disputes and the archive in SQLite in tmp_path, no Kafka): scope, validation,
idempotency, the statement's disputed totals, and a worker answering for its peer."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from discharge.disputes_store import DisputeStore
from discharge.grpc_api import LiabilityServicer
from discharge.peers import Peers
from discharge.runtime import MIGRATIONS, SERVICE_NAME
from discharge.store import ClockArchive
from overgang.config import Settings
from overgang.grpc.auth import Authenticator, bearer
from overgang.grpc.errors import field_violations
from overgang.grpc.server import GrpcServer
from overgang.metrics import Metrics
from overgang.metrics_watch import ServiceMetrics
from overgang.sql.engine import make_engine
from overgang.sql.migrations import migrate
from overgang.v1 import liability_pb2 as pb
from overgang.v1 import liability_pb2_grpc

from .episode_story import Episode, at
from .test_discharge_worker import Harness, _event_record, _run

AUTH = (
    "t-ops=ops,t-fin=finance:1103,t-coord=coordinator:1103/HEALTH_OFFICE,t-sola=finance:1124,"
    "t-hospital=hospital:81234,t-other-hospital=hospital:99999"
)
FINANCE, SOLA, HOSPITAL = bearer("t-fin"), bearer("t-sola"), bearer("t-hospital")
NOW = dt.datetime(2024, 4, 2, 9, tzinfo=dt.UTC)
RATE = 5745  # 2024
Scenario = Callable[[liability_pb2_grpc.LiabilityServiceStub, "World"], Awaitable[None]]


class World:
    """A clock worker fed with E1 (1103 pays 4-6 March) and E2 (1124 pays from 8 March)."""

    def __init__(self, tmp_path: Path) -> None:
        self.engine = make_engine(f"sqlite:///{tmp_path / 'discharge.db'}")
        migrate(self.engine, MIGRATIONS)
        self.disputes = DisputeStore(self.engine)
        self.clock = Harness()
        e1 = (
            Episode("81234:E1")
            .admission_notice(at("2024-03-01"))
            .discharge_ready(at("2024-03-04"))
            .service_ready(at("2024-03-07"))
        )
        e2 = (
            Episode("81234:E2", municipality="1124")
            .admission_notice(at("2024-03-05"))
            .discharge_ready(at("2024-03-08"))
        )
        for event in [*e1.events, *e2.events]:
            _run(self.clock, _event_record(event))

    def servicer(self, owns: bool = True, peers: Peers | None = None) -> LiabilityServicer:
        return LiabilityServicer(
            self.clock.worker.store,
            lambda _episode: 0,
            lambda _episode: owns,
            lambda: {0} if owns else set(),
            Authenticator(AUTH, tokens_file=""),
            peers,
            ClockArchive(self.engine, lambda: NOW),
            disputes=self.disputes,
            now=lambda: NOW,
        )


@contextlib.asynccontextmanager
async def serving(servicer: LiabilityServicer) -> AsyncIterator[GrpcServer]:
    server = GrpcServer(
        "127.0.0.1:0",
        [SERVICE_NAME],
        lambda s: liability_pb2_grpc.add_LiabilityServiceServicer_to_server(servicer, s),
        Settings(auth_tokens=AUTH, auth_tokens_file=""),
        auth=servicer.auth,
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop(0.1)


def run(tmp_path: Path, scenario: Scenario) -> World:
    world = World(tmp_path)

    async def main() -> None:
        async with (
            serving(world.servicer()) as server,
            grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
        ):
            stub = liability_pb2_grpc.LiabilityServiceStub(channel)
            await asyncio.wait_for(scenario(stub, world), timeout=30)

    asyncio.run(main())
    world.engine.dispose()
    return world


def dispute_request(
    *days: str, dispute_id: str = "stavanger-2024-03-1", episode: str = "81234:E1", **kw: Any
) -> pb.DisputeDaysRequest:
    kw.setdefault("reason", "the answer of 4 March was not taken into account")
    return pb.DisputeDaysRequest(dispute_id=dispute_id, episode_id=episode, days=days, **kw)


def resolve_request(
    state: int, note: str = "checked", dispute_id: str = "stavanger-2024-03-1"
) -> Any:
    return pb.ResolveDisputeRequest(dispute_id=dispute_id, resolution=state, note=note)


async def statement(stub: Any, municipality: str = "1103") -> Any:
    request = pb.GetMonthlyStatementRequest(municipality=municipality, month="2024-03")
    return await stub.GetMonthlyStatement(request, metadata=bearer("t-ops"))


async def error_of(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value


# ------------------------------------------------------------------------ opening
def test_the_paying_municipality_opens_a_dispute_of_liable_days(tmp_path: Path) -> None:
    async def scenario(stub: Any, _: World) -> None:
        answer = await stub.DisputeDays(
            dispute_request("2024-03-05", "2024-03-04"), metadata=FINANCE
        )
        assert (answer.state, list(answer.days), answer.municipality) == (
            pb.DISPUTE_OPEN,
            ["2024-03-04", "2024-03-05"],
            "1103",
        )

    run(tmp_path, scenario)


def test_a_dispute_shows_beside_the_liable_days_it_never_changes(tmp_path: Path) -> None:
    async def scenario(stub: Any, _: World) -> None:
        await stub.DisputeDays(dispute_request("2024-03-04", "2024-03-05"), metadata=FINANCE)
        month = await statement(stub)
        [line] = month.lines
        assert (
            line.liable_days,
            line.amount_nok,
            line.disputed_open_days,
            line.disputed_open_nok,
            month.disputed_open_nok,
            [d.dispute_id for d in line.disputes],
        ) == (3, 3 * RATE, 2, 2 * RATE, 2 * RATE, ["stavanger-2024-03-1"])

    run(tmp_path, scenario)


def test_a_dispute_leaves_the_clock_table_as_it_was(tmp_path: Path) -> None:
    before: list[str] = []

    async def scenario(stub: Any, world: World) -> None:
        before.append(json.dumps(world.clock.table, sort_keys=True, default=str))
        await stub.DisputeDays(dispute_request("2024-03-04"), metadata=FINANCE)
        await stub.ResolveDispute(resolve_request(pb.DISPUTE_ACCEPTED), metadata=HOSPITAL)

    world = run(tmp_path, scenario)
    assert json.dumps(world.clock.table, sort_keys=True, default=str) == before[0]


def test_the_same_dispute_id_and_content_again_answers_the_recorded_dispute(tmp_path: Path) -> None:
    async def scenario(stub: Any, world: World) -> None:
        first = await stub.DisputeDays(dispute_request("2024-03-04"), metadata=FINANCE)
        again = await stub.DisputeDays(dispute_request("2024-03-04"), metadata=FINANCE)
        assert (again == first, len(world.disputes.of_episodes(["81234:E1"])["81234:E1"])) == (
            True,
            1,
        )

    run(tmp_path, scenario)


def test_a_dispute_id_reused_with_other_content_already_exists(tmp_path: Path) -> None:
    async def scenario(stub: Any, _: World) -> None:
        await stub.DisputeDays(dispute_request("2024-03-04"), metadata=FINANCE)
        error = await error_of(stub.DisputeDays(dispute_request("2024-03-05"), metadata=FINANCE))
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS

    run(tmp_path, scenario)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (dispute_request("2024-03-09"), "days"),  # after service ready: not liable
        (dispute_request(), "days"),
        (dispute_request("2024-03-04", reason=""), "reason"),
        (dispute_request("2024-03-04", reason="x" * 501), "reason"),
        (dispute_request("2024-03-04", dispute_id="no spaces"), "disputeId"),
        (dispute_request("2024-03-04", episode="E1"), "episodeId"),
    ],
    ids=["not-liable", "no-days", "no-reason", "long-reason", "bad-id", "bad-episode"],
)
def test_invalid_dispute_input_names_the_field(tmp_path: Path, request_: Any, field: str) -> None:
    async def scenario(stub: Any, _: World) -> None:
        error = await error_of(stub.DisputeDays(request_, metadata=FINANCE))
        assert (error.code(), [f for f, _ in field_violations(error)]) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            [field],
        )

    run(tmp_path, scenario)


@pytest.mark.parametrize("token", ["t-sola", "t-hospital"])
def test_only_the_paying_municipality_may_dispute(tmp_path: Path, token: str) -> None:
    async def scenario(stub: Any, _: World) -> None:
        error = await error_of(
            stub.DisputeDays(dispute_request("2024-03-04"), metadata=bearer(token))
        )
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED

    run(tmp_path, scenario)


def test_a_coordinator_of_the_paying_municipality_may_dispute(tmp_path: Path) -> None:
    async def scenario(stub: Any, _: World) -> None:
        answer = await stub.DisputeDays(dispute_request("2024-03-04"), metadata=bearer("t-coord"))
        assert answer.state == pb.DISPUTE_OPEN

    run(tmp_path, scenario)


def test_a_dispute_of_an_unknown_episode_is_not_found(tmp_path: Path) -> None:
    async def scenario(stub: Any, _: World) -> None:
        request = dispute_request("2024-03-04", episode="81234:NOPE")
        error = await error_of(stub.DisputeDays(request, metadata=FINANCE))
        assert error.code() == grpc.StatusCode.NOT_FOUND

    run(tmp_path, scenario)


def test_days_under_an_open_dispute_are_not_disputed_twice(tmp_path: Path) -> None:
    async def scenario(stub: Any, _: World) -> None:
        await stub.DisputeDays(dispute_request("2024-03-04"), metadata=FINANCE)
        second = dispute_request("2024-03-04", dispute_id="stavanger-2024-03-2")
        error = await error_of(stub.DisputeDays(second, metadata=FINANCE))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT

    run(tmp_path, scenario)


# ------------------------------------------------------------------------ resolving
def test_the_hospital_accepts_and_the_statement_counts_the_days_as_accepted(
    tmp_path: Path,
) -> None:
    async def scenario(stub: Any, _: World) -> None:
        await stub.DisputeDays(dispute_request("2024-03-04"), metadata=FINANCE)
        answer = await stub.ResolveDispute(resolve_request(pb.DISPUTE_ACCEPTED), metadata=HOSPITAL)
        [line] = (await statement(stub)).lines
        assert (answer.state, answer.resolution_note, line.liable_days) == (
            pb.DISPUTE_ACCEPTED,
            "checked",
            3,
        )
        assert (
            line.disputed_open_days,
            line.disputed_accepted_days,
            line.disputed_accepted_nok,
        ) == (
            0,
            1,
            RATE,
        )

    run(tmp_path, scenario)


def test_the_same_resolution_again_answers_the_resolved_dispute(tmp_path: Path) -> None:
    async def scenario(stub: Any, _: World) -> None:
        await stub.DisputeDays(dispute_request("2024-03-04"), metadata=FINANCE)
        first = await stub.ResolveDispute(resolve_request(pb.DISPUTE_REJECTED), metadata=HOSPITAL)
        again = await stub.ResolveDispute(resolve_request(pb.DISPUTE_REJECTED), metadata=HOSPITAL)
        assert again == first

    run(tmp_path, scenario)


def test_a_resolved_dispute_cannot_be_resolved_otherwise(tmp_path: Path) -> None:
    async def scenario(stub: Any, _: World) -> None:
        await stub.DisputeDays(dispute_request("2024-03-04"), metadata=FINANCE)
        await stub.ResolveDispute(resolve_request(pb.DISPUTE_REJECTED), metadata=HOSPITAL)
        call = stub.ResolveDispute(resolve_request(pb.DISPUTE_ACCEPTED), metadata=HOSPITAL)
        assert (await error_of(call)).code() == grpc.StatusCode.FAILED_PRECONDITION

    run(tmp_path, scenario)


def test_days_of_a_rejected_dispute_may_be_disputed_again(tmp_path: Path) -> None:
    async def scenario(stub: Any, _: World) -> None:
        await stub.DisputeDays(dispute_request("2024-03-04"), metadata=FINANCE)
        await stub.ResolveDispute(resolve_request(pb.DISPUTE_REJECTED), metadata=HOSPITAL)
        second = dispute_request("2024-03-04", dispute_id="stavanger-2024-03-2")
        assert (await stub.DisputeDays(second, metadata=FINANCE)).state == pb.DISPUTE_OPEN

    run(tmp_path, scenario)


@pytest.mark.parametrize("token", ["t-other-hospital", "t-fin"])
def test_only_the_episodes_hospital_may_resolve(tmp_path: Path, token: str) -> None:
    async def scenario(stub: Any, _: World) -> None:
        await stub.DisputeDays(dispute_request("2024-03-04"), metadata=FINANCE)
        call = stub.ResolveDispute(resolve_request(pb.DISPUTE_ACCEPTED), metadata=bearer(token))
        assert (await error_of(call)).code() == grpc.StatusCode.PERMISSION_DENIED

    run(tmp_path, scenario)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (resolve_request(pb.DISPUTE_OPEN), "resolution"),
        (resolve_request(pb.DISPUTE_ACCEPTED, note=""), "note"),
    ],
    ids=["open", "no-note"],
)
def test_invalid_resolution_input_names_the_field(
    tmp_path: Path, request_: Any, field: str
) -> None:
    async def scenario(stub: Any, _: World) -> None:
        await stub.DisputeDays(dispute_request("2024-03-04"), metadata=FINANCE)
        error = await error_of(stub.ResolveDispute(request_, metadata=HOSPITAL))
        assert [f for f, _ in field_violations(error)] == [field]

    run(tmp_path, scenario)


def test_resolving_an_unknown_dispute_is_not_found(tmp_path: Path) -> None:
    async def scenario(stub: Any, _: World) -> None:
        error = await error_of(
            stub.ResolveDispute(resolve_request(pb.DISPUTE_ACCEPTED), metadata=HOSPITAL)
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND

    run(tmp_path, scenario)


# ------------------------------------------------------------------------ two workers
def test_a_worker_not_owning_the_episode_checks_the_days_with_the_owners_statement(
    tmp_path: Path,
) -> None:
    """Worker A owns no partition: it forwards GetEpisode to B to check the days, records
    the dispute in the shared database, and its monthly statement (fanned out to B) shows
    it."""
    world = World(tmp_path)

    async def main() -> None:
        async with serving(world.servicer(owns=True)) as owner:
            owner_address = f"127.0.0.1:{owner.port}"
            peers = Peers(
                "127.0.0.1:1",
                lambda: {f"http://{owner_address}": {"changelog": [0]}},
                "changelog",
                grpc.aio.insecure_channel,
            )
            async with (
                serving(world.servicer(owns=False, peers=peers)) as other,
                grpc.aio.insecure_channel(f"127.0.0.1:{other.port}") as channel,
            ):
                stub = liability_pb2_grpc.LiabilityServiceStub(channel)
                refused = dispute_request("2024-03-09", dispute_id="x")
                error = await error_of(stub.DisputeDays(refused, metadata=FINANCE))
                await stub.DisputeDays(dispute_request("2024-03-04"), metadata=FINANCE)
                [line] = (await statement(stub)).lines
        assert (error.code(), line.liable_days, line.disputed_open_days) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            3,
            1,
        )

    asyncio.run(main())
    world.engine.dispose()


def test_another_municipality_learns_nothing_about_the_episodes_days(tmp_path: Path) -> None:
    async def scenario(stub: Any, _: World) -> None:
        not_liable = dispute_request("2024-03-09")
        error = await error_of(stub.DisputeDays(not_liable, metadata=SOLA))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED

    run(tmp_path, scenario)


# ------------------------------------------------------------------------ metrics
def test_disputes_are_counted_by_payer_and_state_for_the_metrics(tmp_path: Path) -> None:
    async def scenario(stub: Any, _: World) -> None:
        await stub.DisputeDays(dispute_request("2024-03-04"), metadata=FINANCE)
        second = dispute_request("2024-03-05", dispute_id="stavanger-2024-03-2")
        await stub.DisputeDays(second, metadata=FINANCE)
        await stub.ResolveDispute(resolve_request(pb.DISPUTE_REJECTED), metadata=HOSPITAL)

    world = run(tmp_path, scenario)
    metrics = Metrics()
    ServiceMetrics("discharge", metrics).watch_disputes(world.disputes.counts)
    sample = metrics.registry.get_sample_value
    labels = {"service": "discharge", "municipality": "1103"}
    assert (
        sample("overgang_disputes", {**labels, "state": "OPEN"}),
        sample("overgang_disputes", {**labels, "state": "REJECTED"}),
    ) == (1.0, 1.0)


def test_the_migrations_create_exactly_the_modelled_discharge_tables(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import MetaData
    from sqlmodel import SQLModel

    from discharge.models import TABLE_NAMES

    metadata = MetaData()
    for name in TABLE_NAMES:
        SQLModel.metadata.tables[name].to_metadata(metadata)
    world = World(tmp_path)
    with world.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    world.engine.dispose()
    version_table = ("remove_table", "discharge_alembic_version")
    assert [d for d in differences if (d[0], getattr(d[1], "name", "")) != version_table] == []
