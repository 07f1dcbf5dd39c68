"""Issue 8 item 2: pathway reads are scoped. A hospital sees its own HER-id's episodes, a
coordinator its municipality's, finance no pathway details, ops everything; lists and
watches are narrowed to the scope, a filter outside it is refused; no read returns a
national id. Episodes: HER 81234 (Stavanger 1103 unless said), 99999 another hospital."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from overgang.grpc.auth import bearer
from overgang.v1 import pathway_pb2, pathway_pb2_grpc

from .test_pathway_grpc import (
    AUTH,
    HER,
    NID,
    TOKENS,
    Server,
    error_of,
    event,
    get,
    list_ids,
    submit,
    valid_national_id,
)

STAVANGER = f"{HER}:stavanger"
SOLA = f"{HER}:sola"
OTHER_HOSPITAL = "99999:stavanger"
SOLA_NID = valid_national_id("020280")


def _episodes(stub: Any) -> None:
    """Stavanger and Sola episodes of HER 81234, and a Stavanger one of HER 99999."""
    submit(stub, event(STAVANGER))
    submit(stub, event(SOLA, municipality="1124"), national_id=SOLA_NID)
    submit(
        stub,
        event(OTHER_HOSPITAL),
        national_id=valid_national_id("030370"),
        token=TOKENS["other-hospital"],
    )


def _watch(stub: Any, token: str, **filters: Any) -> Any:
    stream = stub.WatchPathways(
        pathway_pb2.WatchPathwaysRequest(**filters), metadata=bearer(token), timeout=20
    )
    stream.initial_metadata()  # the server subscribed
    return stream


def _serve(tmp_path: Path, auth: str) -> Iterator[pathway_pb2_grpc.PathwayServiceStub]:
    with (
        Server(tmp_path, auth) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.runtime.port}") as channel,
    ):
        yield pathway_pb2_grpc.PathwayServiceStub(channel)


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[pathway_pb2_grpc.PathwayServiceStub]:
    yield from _serve(tmp_path, AUTH)


@pytest.fixture
def open_stub(tmp_path: Path) -> Iterator[pathway_pb2_grpc.PathwayServiceStub]:
    """A service with auth off (loopback only): every caller is ops."""
    yield from _serve(tmp_path, "")


# ------------------------------------------------------------------------ GetPathway
def test_a_coordinator_reads_a_pathway_of_its_municipality(stub: Any) -> None:
    _episodes(stub)
    assert get(stub, STAVANGER, TOKENS["coordinator"]).municipality == "1103"


def test_a_coordinator_may_not_read_a_pathway_of_another_municipality(stub: Any) -> None:
    _episodes(stub)
    error = error_of(lambda: get(stub, SOLA, TOKENS["coordinator"]))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_refused_read_does_not_tell_a_coordinator_whether_the_episode_exists(
    stub: Any,
) -> None:
    _episodes(stub)

    def code(episode: str) -> Any:
        return error_of(lambda: get(stub, episode, TOKENS["coordinator"])).code()

    assert [code(SOLA), code(f"{HER}:nobody")] == [grpc.StatusCode.PERMISSION_DENIED] * 2


def test_a_hospital_asking_for_an_unknown_episode_of_its_own_is_not_found(stub: Any) -> None:
    error = error_of(lambda: get(stub, f"{HER}:nobody", TOKENS["hospital"]))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_a_hospital_reads_its_own_episode_in_any_municipality(stub: Any) -> None:
    _episodes(stub)
    assert get(stub, SOLA, TOKENS["hospital"]).municipality == "1124"


def test_finance_may_not_read_a_pathway(stub: Any) -> None:
    _episodes(stub)
    error = error_of(lambda: get(stub, STAVANGER, TOKENS["finance"]))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_refused_read_names_no_patient_data(stub: Any) -> None:
    _episodes(stub)
    details = error_of(lambda: get(stub, SOLA, TOKENS["coordinator"])).details() or ""
    pseudonym = get(stub, SOLA).patient_pseudonym
    assert [s for s in (SOLA, pseudonym, SOLA_NID, "1124") if s in details] == []


# ---------------------------------------------------------------------- ListPathways
def test_a_coordinators_list_holds_only_its_municipalitys_pathways(stub: Any) -> None:
    _episodes(stub)
    assert list_ids(stub, TOKENS["coordinator"]) == [STAVANGER, OTHER_HOSPITAL]


def test_a_coordinators_list_filtered_by_its_own_municipality_is_the_same(stub: Any) -> None:
    _episodes(stub)
    assert list_ids(stub, TOKENS["coordinator"], municipality="1103") == [
        STAVANGER,
        OTHER_HOSPITAL,
    ]


def test_a_coordinator_of_1103_asking_for_municipality_1124_is_denied(stub: Any) -> None:
    _episodes(stub)
    error = error_of(lambda: list_ids(stub, TOKENS["coordinator"], municipality="1124"))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_hospitals_list_filtered_by_municipality_holds_only_its_own_episodes(
    stub: Any,
) -> None:
    _episodes(stub)
    assert list_ids(stub, TOKENS["hospital"], municipality="1103") == [STAVANGER]


def test_finance_may_not_list_pathways(stub: Any) -> None:
    error = error_of(lambda: list_ids(stub, TOKENS["finance"]))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def test_ops_lists_every_pathway(stub: Any) -> None:
    _episodes(stub)
    assert list_ids(stub) == [SOLA, STAVANGER, OTHER_HOSPITAL]


def test_with_auth_off_every_caller_lists_every_pathway(open_stub: Any) -> None:
    _episodes(open_stub)
    response = open_stub.ListPathways(pathway_pb2.ListPathwaysRequest(), timeout=10)
    assert [p.episode_id for p in response.pathways] == [SOLA, STAVANGER, OTHER_HOSPITAL]


# --------------------------------------------------------------------- WatchPathways
def test_a_coordinators_watch_leaves_out_another_municipality(stub: Any) -> None:
    stream = _watch(stub, TOKENS["coordinator"])
    submit(stub, event(SOLA, municipality="1124"), national_id=SOLA_NID)
    submit(stub, event(STAVANGER))
    first = next(stream)
    stream.cancel()
    assert first.episode_id == STAVANGER


def test_a_hospitals_watch_leaves_out_another_hospitals_episodes(stub: Any) -> None:
    stream = _watch(stub, TOKENS["hospital"])
    submit(
        stub,
        event(OTHER_HOSPITAL),
        national_id=valid_national_id("030370"),
        token=TOKENS["other-hospital"],
    )
    submit(stub, event(STAVANGER))
    first = next(stream)
    stream.cancel()
    assert first.episode_id == STAVANGER


def test_a_coordinator_of_1103_watching_municipality_1124_is_denied(stub: Any) -> None:
    request = pathway_pb2.WatchPathwaysRequest(municipality="1124")
    stream = stub.WatchPathways(request, metadata=bearer(TOKENS["coordinator"]), timeout=10)
    error = error_of(lambda: next(stream))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def test_finance_may_not_watch_pathways(stub: Any) -> None:
    request = pathway_pb2.WatchPathwaysRequest()
    stream = stub.WatchPathways(request, metadata=bearer(TOKENS["finance"]), timeout=10)
    error = error_of(lambda: next(stream))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


# ------------------------------------------------------------- SubmitHospitalEvent
@pytest.mark.parametrize("token", ["finance", "other-coordinator"])
def test_only_a_hospital_of_the_her_id_and_ops_submit(stub: Any, token: str) -> None:
    error = error_of(lambda: submit(stub, event(STAVANGER), token=TOKENS[token]))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


# -------------------------------------------------------------------- national ids
@pytest.mark.parametrize("token", ["hospital", "coordinator", "ops"])
def test_no_read_returns_the_national_id(stub: Any, token: str) -> None:
    stream = _watch(stub, TOKENS[token])
    submit(stub, event(STAVANGER))
    watched = next(stream)
    stream.cancel()
    listed = stub.ListPathways(pathway_pb2.ListPathwaysRequest(), metadata=bearer(TOKENS[token]))
    responses = [watched, listed, get(stub, STAVANGER, TOKENS[token])]
    blob = b"".join(r.SerializeToString() for r in responses) + str(responses).encode()
    assert NID.encode() not in blob
