"""Issue 8 item 9: reads of a pathway, task streams and refused calls go to an audit sink
of their own (not the log level's to drop) with the caller's identity, role, peer, RPC,
episode or query, outcome and time; recording never blocks or fails the call."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import structlog

from overgang.audit import OK, REFUSED, Audit, AuditRecord, LogAuditSink, MemoryAuditSink
from overgang.config import Settings
from overgang.grpc.auth import Authenticator, bearer
from overgang.grpc.server import GrpcServer
from overgang.logging import configure_logging
from overgang.sql.engine import make_engine
from overgang.sql.migrations import migrate
from overgang.v1 import coordination_pb2, pathway_pb2, pathway_pb2_grpc
from pathway.grpc_api import SERVICE_NAME, PathwayServicer
from pathway.municipalities import load_municipalities
from pathway.runtime import MIGRATIONS
from pathway.store import PathwayStore
from pathway.watch import Broadcaster

from .test_coordination_grpc import OPS, Harness, running
from .test_pathway_grpc import AUTH, HER, NID, TOKENS, event

Scenario = Callable[[pathway_pb2_grpc.PathwayServiceStub, MemoryAuditSink], Awaitable[None]]


@contextlib.asynccontextmanager
async def audited_pathway(
    tmp_path: Path, sink: Any
) -> AsyncIterator[pathway_pb2_grpc.PathwayServiceStub]:
    """PathwayService wired as a runtime should: its own Audit on the servicer and the
    authenticator (here a memory sink; in production the KafkaAuditSink)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'pathway.db'}")
    await asyncio.to_thread(migrate, engine, MIGRATIONS)
    audit = Audit("pathway", sink)
    auth = Authenticator(AUTH, tokens_file="", audit=audit)
    store = PathwayStore(engine, "test-key")
    servicer = PathwayServicer(store, auth, load_municipalities(), Broadcaster(), audit=audit)
    server = GrpcServer(
        "127.0.0.1:0",
        [SERVICE_NAME],
        lambda s: pathway_pb2_grpc.add_PathwayServiceServicer_to_server(servicer, s),
        Settings(auth_tokens=AUTH, auth_tokens_file=""),
        auth=auth,
    )
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield pathway_pb2_grpc.PathwayServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(0.1)
        engine.dispose()


def run(tmp_path: Path, scenario: Scenario, sink: Any = None) -> MemoryAuditSink:
    memory = MemoryAuditSink()

    async def main() -> None:
        async with audited_pathway(tmp_path, sink or memory) as stub:
            await asyncio.wait_for(scenario(stub, memory), timeout=30)

    asyncio.run(main())
    return memory


async def admit(stub: Any, episode: str = f"{HER}:E1", municipality: str = "1103") -> None:
    request = pathway_pb2.SubmitHospitalEventRequest(
        event=event(episode, municipality=municipality), national_id=NID
    )
    await stub.SubmitHospitalEvent(request, metadata=bearer(TOKENS["hospital"]))


async def refused(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code()


# ------------------------------------------------------------------------ pathway reads
def test_a_pathway_read_is_recorded_with_who_from_where_and_when(tmp_path: Path) -> None:
    async def scenario(stub: Any, _: MemoryAuditSink) -> None:
        await admit(stub)
        request = pathway_pb2.GetPathwayRequest(episode_id=f"{HER}:E1")
        await stub.GetPathway(request, metadata=bearer(TOKENS["coordinator"]))

    before = dt.datetime.now(dt.UTC)
    [record] = run(tmp_path, scenario).records
    assert (record.rpc, record.outcome, record.role, record.episode_id) == (
        "GetPathway",
        OK,
        "coordinator:1103/HOME_CARE",
        f"{HER}:E1",
    )
    # No name in the tokens: the identity is the role and a token fingerprint.
    assert record.identity.startswith("coordinator:1103/HOME_CARE#")
    assert (record.service, record.peer.startswith("ipv4:127.0.0.1:"), record.time >= before) == (
        "pathway",
        True,
        True,
    )


def test_a_refused_read_is_recorded_with_the_episode_asked_for(tmp_path: Path) -> None:
    async def scenario(stub: Any, _: MemoryAuditSink) -> None:
        await admit(stub, f"{HER}:sola", municipality="1124")
        request = pathway_pb2.GetPathwayRequest(episode_id=f"{HER}:sola")
        call = stub.GetPathway(request, metadata=bearer(TOKENS["coordinator"]))
        assert await refused(call) == grpc.StatusCode.PERMISSION_DENIED

    [record] = run(tmp_path, scenario).records
    assert (record.rpc, record.outcome, record.episode_id, record.detail) == (
        "GetPathway",
        REFUSED,
        f"{HER}:sola",
        "read this pathway",
    )


def test_a_list_is_recorded_with_its_query_and_the_episodes_it_gave(tmp_path: Path) -> None:
    async def scenario(stub: Any, _: MemoryAuditSink) -> None:
        await admit(stub, f"{HER}:A")
        await admit(stub, f"{HER}:B")
        request = pathway_pb2.ListPathwaysRequest(stage=pathway_pb2.STAGE_ADMITTED)
        await stub.ListPathways(request, metadata=bearer(TOKENS["hospital"]))

    [record] = run(tmp_path, scenario).records
    assert (record.rpc, record.episode_ids, dict(record.query)) == (
        "ListPathways",
        (f"{HER}:A", f"{HER}:B"),
        {"stage": "ADMITTED", "herId": HER},
    )


def test_a_watch_is_recorded_when_opened_and_for_each_pathway_it_sends(tmp_path: Path) -> None:
    async def scenario(stub: Any, _: MemoryAuditSink) -> None:
        call = stub.WatchPathways(
            pathway_pb2.WatchPathwaysRequest(), metadata=bearer(TOKENS["ops"])
        )
        await call.initial_metadata()
        await admit(stub)
        await asyncio.wait_for(call.read(), 5)
        call.cancel()

    records = run(tmp_path, scenario).records
    assert [(r.rpc, r.episode_id) for r in records] == [
        ("WatchPathways", ""),
        ("WatchPathways", f"{HER}:E1"),
    ]


def test_unauthenticated_and_out_of_scope_calls_are_recorded_as_refused(tmp_path: Path) -> None:
    async def scenario(stub: Any, _: MemoryAuditSink) -> None:
        request = pathway_pb2.ListPathwaysRequest()
        assert await refused(stub.ListPathways(request, metadata=bearer("nope"))) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        submit = pathway_pb2.SubmitHospitalEventRequest(event=event(), national_id=NID)
        call = stub.SubmitHospitalEvent(submit, metadata=bearer(TOKENS["coordinator"]))
        assert await refused(call) == grpc.StatusCode.PERMISSION_DENIED

    records = run(tmp_path, scenario).records
    assert [(r.rpc, r.outcome, r.identity, r.detail) for r in records] == [
        ("ListPathways", REFUSED, "", "missing or unknown bearer token"),
        (
            "SubmitHospitalEvent",
            REFUSED,
            records[1].identity,
            "submit hospital events for that HER-id",
        ),
    ]
    assert records[1].role == "coordinator:1103/HOME_CARE"


def test_a_failing_sink_never_fails_the_read(tmp_path: Path) -> None:
    class Broken:
        def record(self, entry: AuditRecord) -> None:
            raise OSError("disk full")

    async def scenario(stub: Any, _: MemoryAuditSink) -> None:
        await admit(stub)
        request = pathway_pb2.GetPathwayRequest(episode_id=f"{HER}:E1")
        found = await stub.GetPathway(request, metadata=bearer(TOKENS["ops"]))
        assert found.episode_id == f"{HER}:E1"

    run(tmp_path, scenario, sink=Broken())


def test_no_national_id_in_any_record(tmp_path: Path) -> None:
    async def scenario(stub: Any, _: MemoryAuditSink) -> None:
        await admit(stub)
        await stub.ListPathways(pathway_pb2.ListPathwaysRequest(), metadata=bearer(TOKENS["ops"]))

    records = run(tmp_path, scenario).records
    assert records and all(NID.encode() not in r.to_json() for r in records)


# ---------------------------------------------------------------------- survives WARNING
@pytest.fixture
def warning_log() -> Any:
    out = io.StringIO()
    configure_logging("audit-test", "WARNING", stream=out)
    yield out
    logging.captureWarnings(False)
    structlog.reset_defaults()


def test_records_survive_log_level_warning(tmp_path: Path, warning_log: io.StringIO) -> None:
    async def scenario(stub: Any, _: MemoryAuditSink) -> None:
        await admit(stub)
        request = pathway_pb2.GetPathwayRequest(episode_id=f"{HER}:E1")
        await stub.GetPathway(request, metadata=bearer(TOKENS["ops"]))

    assert len(run(tmp_path, scenario).records) == 1  # the sink does not look at the level


def test_the_log_fallback_writes_at_warning(tmp_path: Path, warning_log: io.StringIO) -> None:
    async def scenario(stub: Any, _: MemoryAuditSink) -> None:
        await admit(stub)
        request = pathway_pb2.GetPathwayRequest(episode_id=f"{HER}:E1")
        await stub.GetPathway(request, metadata=bearer(TOKENS["ops"]))

    run(tmp_path, scenario, sink=LogAuditSink())
    [line] = [x for x in warning_log.getvalue().splitlines() if '"event": "audit"' in x]
    assert ('"rpc": "GetPathway"' in line, '"level": "warning"' in line) == (True, True)


# --------------------------------------------------------------------- task streams
def test_a_task_stream_is_recorded_when_opened_and_for_the_episodes_it_shows(
    tmp_path: Path,
) -> None:
    sink = MemoryAuditSink()

    async def main() -> None:
        async with running(tmp_path) as h:
            h.runtime.servicer.audit = h.runtime.auth.audit = Audit("coordination", sink)
            await scenario(h)

    async def scenario(h: Harness) -> None:
        await h.notice("70001:a")
        request = coordination_pb2.StreamTasksRequest(unit="HEALTH_OFFICE")
        call = h.stub.StreamTasks(request, metadata=OPS)
        await asyncio.wait_for(call.read(), 5)
        call.cancel()
        other = coordination_pb2.StreamTasksRequest(unit="NAV")
        denied = h.stub.StreamTasks(other, metadata=bearer("t-ho"))
        assert await refused(denied.read()) == grpc.StatusCode.PERMISSION_DENIED

    asyncio.run(main())
    assert [(r.rpc, r.outcome, r.episode_ids, dict(r.query)) for r in sink.records] == [
        ("StreamTasks", OK, (), {"unit": "HEALTH_OFFICE"}),
        ("StreamTasks", OK, ("70001:a",), {"unit": "HEALTH_OFFICE"}),
        ("StreamTasks", REFUSED, (), {}),
    ]
