"""PathwayService over gRPC: an in-process server on an ephemeral port, SQLite in tmp_path,
no Kafka (the outbox relay does not run)."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import structlog
from sqlalchemy.exc import IntegrityError

from overgang.config import Settings
from overgang.grpc.auth import bearer
from overgang.grpc.errors import field_violations
from overgang.logging import configure_logging
from overgang.v1 import events_pb2, pathway_pb2, pathway_pb2_grpc
from pathway.domain.national_id import with_check_digits
from pathway.domain.pseudonym import PseudonymKeys
from pathway.runtime import PathwayRuntime
from pathway.store import PathwayStore

HER = "81234"
TOKENS = {
    "hospital": "tok-hospital",
    "other-hospital": "tok-other",
    "ops": "tok-ops",
    "coordinator": "tok-coord",
    "other-coordinator": "tok-coord-sola",
    "finance": "tok-finance",
}
AUTH = (
    f"{TOKENS['hospital']}=hospital:{HER},{TOKENS['other-hospital']}=hospital:99999,"
    f"{TOKENS['ops']}=ops,{TOKENS['coordinator']}=coordinator:1103/HOME_CARE,"
    f"{TOKENS['other-coordinator']}=coordinator:1124/HOME_CARE,"
    f"{TOKENS['finance']}=finance:1103"
)
_ids = itertools.count(1)


def valid_national_id(birth: str = "010190") -> str:
    """The first valid fødselsnummer for a birth date (DDMMYY)."""
    numbers = (with_check_digits(f"{birth}{individual}") for individual in range(100, 1000))
    return next(n for n in numbers if n is not None)


NID = valid_national_id()


class Server:
    """The service's asyncio loop runs in a thread; tests use the blocking client."""

    def __init__(self, tmp_path: Path, auth: str = AUTH) -> None:
        """`auth=""`: auth off (loopback), every caller is ops."""
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'pathway.db'}",
            auth_tokens=auth,
            auth_tokens_file="",
            pseudonym_key="test-key",
        )
        self.runtime = PathwayRuntime(settings, grpc_address="127.0.0.1:0", kafka=False)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def __enter__(self) -> Server:
        self.thread.start()
        self.call(self.runtime.start())
        return self

    def __exit__(self, *_: object) -> None:
        self.call(self.runtime.stop(grace=0.5))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with Server(tmp_path) as running:
        yield running


@pytest.fixture
def stub(server: Server) -> Iterator[pathway_pb2_grpc.PathwayServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{server.runtime.port}") as channel:
        yield pathway_pb2_grpc.PathwayServiceStub(channel)


def event(episode: str = f"{HER}:E1", kind: str = "admitted", **changes: Any) -> events_pb2.Event:
    msg = events_pb2.Event(
        event_id=str(changes.pop("event_id", f"ev-{next(_ids)}")),
        episode_id=episode,
        municipality=str(changes.pop("municipality", "1103")),
        division=changes.pop("division", events_pb2.SOMATIC),
    )
    msg.occurred_at.FromDatetime(changes.pop("occurred_at", dt.datetime.now(dt.UTC)))
    getattr(msg, {"admitted": "admitted"}.get(kind, kind)).SetInParent()
    for path, value in changes.items():
        target: Any = msg
        *parents, name = path.split("__")
        for parent in parents:
            target = getattr(target, parent)
        attr = getattr(target, name)
        if hasattr(attr, "extend"):
            attr.extend(value)
        elif hasattr(attr, "FromDatetime"):
            attr.FromDatetime(value)
        else:
            setattr(target, name, value)
    return msg


def submit(
    stub: pathway_pb2_grpc.PathwayServiceStub,
    msg: events_pb2.Event,
    national_id: str = NID,
    token: str = TOKENS["hospital"],
) -> pathway_pb2.SubmitHospitalEventResponse:
    request = pathway_pb2.SubmitHospitalEventRequest(event=msg, national_id=national_id)
    response: pathway_pb2.SubmitHospitalEventResponse = stub.SubmitHospitalEvent(
        request, metadata=bearer(token), timeout=10
    )
    return response


def error_of(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def admitted_episode(stub: pathway_pb2_grpc.PathwayServiceStub, episode: str = f"{HER}:E1") -> str:
    submit(stub, event(episode))
    return episode


def ready_event(episode: str = f"{HER}:E1", **changes: Any) -> events_pb2.Event:
    msg = event(episode, "discharge_ready_notified", **changes)
    msg.discharge_ready_notified.ready_at.CopyFrom(msg.occurred_at)
    return msg


# --- accepted events -------------------------------------------------------------------


def test_first_admitted_event_opens_an_admitted_pathway(stub: Any) -> None:
    response = submit(stub, event())
    assert response.pathway.stage == pathway_pb2.STAGE_ADMITTED


def test_later_event_needs_no_national_id(stub: Any) -> None:
    episode = admitted_episode(stub)
    response = submit(stub, ready_event(episode), national_id="")
    assert response.pathway.stage == pathway_pb2.STAGE_DISCHARGE_READY


def test_duplicate_event_id_is_reported_and_changes_nothing(stub: Any) -> None:
    episode = admitted_episode(stub)
    notice = ready_event(episode)
    first = submit(stub, notice)
    again = submit(stub, notice)
    assert (again.duplicate, again.pathway) == (True, first.pathway)


def test_ops_may_submit_for_any_hospital(stub: Any) -> None:
    response = submit(stub, event("55555:X1"), token=TOKENS["ops"])
    assert not response.duplicate


# --- validation: INVALID_ARGUMENT with every field violation ---------------------------


def test_missing_national_id_on_the_first_event_is_a_field_violation(stub: Any) -> None:
    error = error_of(lambda: submit(stub, event(), national_id=""))
    assert [f for f, _ in field_violations(error)] == ["nationalId"]


def test_national_id_with_a_bad_check_digit_is_a_field_violation(stub: Any) -> None:
    bad = NID[:10] + str((int(NID[10]) + 1) % 10)
    error = error_of(lambda: submit(stub, event(), national_id=bad))
    assert field_violations(error) == [("nationalId", "second check digit (mod 11) does not match")]


def test_national_id_of_another_patient_is_a_field_violation(stub: Any) -> None:
    episode = admitted_episode(stub)
    other = valid_national_id("020280")
    error = error_of(lambda: submit(stub, ready_event(episode), national_id=other))
    assert field_violations(error) == [
        ("nationalId", "does not match the patient already on this episode")
    ]


def test_every_violation_is_reported_at_once(stub: Any) -> None:
    msg = event(event_id="bad id!", division=events_pb2.DIVISION_UNSPECIFIED)
    msg.ClearField("occurred_at")
    error = error_of(lambda: submit(stub, msg, national_id="123"))
    assert (error.code(), sorted(f for f, _ in field_violations(error))) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["event.division", "event.eventId", "event.occurredAt", "nationalId"],
    )


def test_unknown_municipality_is_a_field_violation(stub: Any) -> None:
    error = error_of(lambda: submit(stub, event(municipality="9999")))
    assert [f for f, _ in field_violations(error)] == ["event.municipality"]


def test_occurred_at_more_than_5_minutes_ahead_is_a_field_violation(stub: Any) -> None:
    future = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)
    error = error_of(lambda: submit(stub, event(occurred_at=future)))
    assert field_violations(error) == [("event.occurredAt", "is more than 5 minutes in the future")]


def test_occurred_at_a_little_ahead_is_accepted(stub: Any) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=4)
    assert submit(stub, event(occurred_at=soon)).pathway.stage == pathway_pb2.STAGE_ADMITTED


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("service_ready", "event.serviceReady"),
        ("municipality_answered", "event.municipalityAnswered"),
    ],
)
def test_a_hospital_may_not_submit_a_municipal_event(stub: Any, kind: str, path: str) -> None:
    episode = admitted_episode(stub)
    error = error_of(lambda: submit(stub, event(episode, kind)))
    assert [f for f, _ in field_violations(error)] == [path]


def test_unspecified_need_is_reported_with_its_index(stub: Any) -> None:
    episode = admitted_episode(stub)
    msg = ready_event(episode, discharge_ready_notified__needs=[events_pb2.HOME_NURSING, 0])
    error = error_of(lambda: submit(stub, msg))
    assert [f for f, _ in field_violations(error)] == ["event.dischargeReadyNotified.needs[1]"]


def test_an_unknown_need_number_is_reported_once_with_its_index(stub: Any) -> None:
    episode = admitted_episode(stub)
    msg = ready_event(episode, discharge_ready_notified__needs=[events_pb2.HOME_NURSING, 99])
    error = error_of(lambda: submit(stub, msg))
    assert [f for f, _ in field_violations(error)] == ["event.dischargeReadyNotified.needs[1]"]


def test_missing_event_is_a_field_violation(stub: Any) -> None:
    request = pathway_pb2.SubmitHospitalEventRequest(national_id=NID)
    error = error_of(
        lambda: stub.SubmitHospitalEvent(request, metadata=bearer(TOKENS["hospital"]), timeout=10)
    )
    assert [f for f, _ in field_violations(error)] == ["event"]


# --- rules of the pathway --------------------------------------------------------------


def test_illegal_transition_is_a_failed_precondition_with_the_reason(stub: Any) -> None:
    episode = admitted_episode(stub)
    error = error_of(lambda: submit(stub, event(episode, "discharge_ready_withdrawn")))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "dischargeReadyWithdrawn needs stage DISCHARGE_READY, pathway is ADMITTED",
    )


def test_a_rejected_event_id_can_be_submitted_later_when_legal(stub: Any) -> None:
    episode = admitted_episode(stub)
    now = dt.datetime.now(dt.UTC)
    withdrawn = event(
        episode, "discharge_ready_withdrawn", occurred_at=now + dt.timedelta(seconds=2)
    )
    error_of(lambda: submit(stub, withdrawn))
    submit(stub, ready_event(episode, occurred_at=now + dt.timedelta(seconds=1)))
    assert submit(stub, withdrawn).pathway.stage == pathway_pb2.STAGE_ADMITTED


# --- auth ------------------------------------------------------------------------------


def test_hospital_may_not_submit_another_hospitals_episode(stub: Any) -> None:
    error = error_of(lambda: submit(stub, event("99999:E1")))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def test_coordinator_may_not_submit_hospital_events(stub: Any) -> None:
    error = error_of(lambda: submit(stub, event(), token=TOKENS["coordinator"]))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def test_unknown_token_is_unauthenticated(stub: Any) -> None:
    error = error_of(lambda: submit(stub, event(), token="nope"))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_hospital_may_not_read_another_hospitals_episode(stub: Any) -> None:
    submit(stub, event("99999:E1"), token=TOKENS["other-hospital"])
    request = pathway_pb2.GetPathwayRequest(episode_id="99999:E1")
    error = error_of(
        lambda: stub.GetPathway(request, metadata=bearer(TOKENS["hospital"]), timeout=10)
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


# --- reads -----------------------------------------------------------------------------


def get(stub: Any, episode: str, token: str = TOKENS["ops"]) -> pathway_pb2.Pathway:
    request = pathway_pb2.GetPathwayRequest(episode_id=episode)
    return stub.GetPathway(request, metadata=bearer(token), timeout=10)  # type: ignore[no-any-return]


def test_get_unknown_pathway_is_not_found(stub: Any) -> None:
    error = error_of(lambda: get(stub, f"{HER}:nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_get_returns_the_history_of_stage_changes(stub: Any) -> None:
    episode = admitted_episode(stub)
    submit(stub, ready_event(episode))
    history = get(stub, episode, TOKENS["coordinator"]).history
    assert [(h.from_stage, h.to_stage) for h in history] == [
        (pathway_pb2.STAGE_UNSPECIFIED, pathway_pb2.STAGE_ADMITTED),
        (pathway_pb2.STAGE_ADMITTED, pathway_pb2.STAGE_DISCHARGE_READY),
    ]


def test_national_id_never_appears_in_any_response(stub: Any) -> None:
    episode = admitted_episode(stub)
    responses = [
        submit(stub, ready_event(episode)),
        get(stub, episode),
        stub.ListPathways(pathway_pb2.ListPathwaysRequest(), metadata=bearer(TOKENS["ops"])),
    ]
    blob = b"".join(r.SerializeToString() for r in responses) + str(responses).encode()
    assert NID.encode() not in blob


def list_ids(stub: Any, token: str = TOKENS["ops"], **filters: Any) -> list[str]:
    request = pathway_pb2.ListPathwaysRequest(**filters)
    response = stub.ListPathways(request, metadata=bearer(token), timeout=10)
    return [p.episode_id for p in response.pathways]


def test_list_filters_by_stage(stub: Any) -> None:
    admitted_episode(stub, f"{HER}:A")
    submit(stub, ready_event(admitted_episode(stub, f"{HER}:B")))
    assert list_ids(stub, stage=pathway_pb2.STAGE_DISCHARGE_READY) == [f"{HER}:B"]


def test_list_filters_by_municipality(stub: Any) -> None:
    admitted_episode(stub, f"{HER}:A")
    submit(stub, event(f"{HER}:B", municipality="4601"), national_id=valid_national_id("020280"))
    assert list_ids(stub, municipality="4601") == [f"{HER}:B"]


def test_list_pages_through_every_pathway_once(stub: Any) -> None:
    for n in range(5):
        admitted_episode(stub, f"{HER}:P{n}")
    seen: list[str] = []
    token = ""
    while True:
        request = pathway_pb2.ListPathwaysRequest(page_size=2, page_token=token)
        page = stub.ListPathways(request, metadata=bearer(TOKENS["ops"]), timeout=10)
        seen += [p.episode_id for p in page.pathways]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"{HER}:P{n}" for n in range(5)]


def test_list_shows_a_hospital_only_its_own_episodes(stub: Any) -> None:
    admitted_episode(stub, f"{HER}:A")
    submit(stub, event("99999:B"), token=TOKENS["other-hospital"])
    assert list_ids(stub, token=TOKENS["hospital"]) == [f"{HER}:A"]


def test_list_with_a_foreign_page_token_is_a_field_violation(stub: Any) -> None:
    request = pathway_pb2.ListPathwaysRequest(page_token="%%%")
    error = error_of(lambda: stub.ListPathways(request, metadata=bearer(TOKENS["ops"])))
    assert [f for f, _ in field_violations(error)] == ["pageToken"]


def test_watch_streams_changes_after_subscription_filtered_by_municipality(stub: Any) -> None:
    request = pathway_pb2.WatchPathwaysRequest(municipality="4601")
    stream = stub.WatchPathways(request, metadata=bearer(TOKENS["ops"]), timeout=20)
    stream.initial_metadata()  # the server subscribed
    admitted_episode(stub, f"{HER}:Stavanger")
    submit(
        stub, event(f"{HER}:Bergen", municipality="4601"), national_id=valid_national_id("030370")
    )
    first = next(stream)
    stream.cancel()
    assert (first.episode_id, first.to_stage) == (f"{HER}:Bergen", pathway_pb2.STAGE_ADMITTED)


def test_a_cancelled_watch_is_unsubscribed(server: Server, stub: Any) -> None:
    request = pathway_pb2.WatchPathwaysRequest()
    stream = stub.WatchPathways(request, metadata=bearer(TOKENS["ops"]), timeout=20)
    stream.initial_metadata()
    stream.cancel()
    for _ in range(100):
        if server.runtime.broadcaster.subscribers == 0:
            break
        threading.Event().wait(0.05)
    assert server.runtime.broadcaster.subscribers == 0


def test_an_event_id_of_another_episode_is_a_field_violation(stub: Any) -> None:
    first = event(f"{HER}:A")
    submit(stub, first)
    reused = event(f"{HER}:B", event_id=first.event_id)
    error = error_of(lambda: submit(stub, reused, national_id=valid_national_id("020280")))
    assert [f for f, _ in field_violations(error)] == ["event.eventId"]


# --- the pseudonym key rotates (issue 8 item 5) ----------------------------------------------


def _serve_with_key(tmp_path: Path, key_file: str) -> Server:
    running = Server(tmp_path)
    keys = PseudonymKeys.parse(key_file)
    running.runtime.store = PathwayStore(running.runtime.engine, keys)  # before start()
    return running


def test_a_returning_patient_is_taken_in_after_the_key_rotated(tmp_path: Path) -> None:
    for n, key in enumerate(["v1=first-key", "v1=first-key\nv2=second-key"]):
        with (
            _serve_with_key(tmp_path, key) as running,
            grpc.insecure_channel(f"127.0.0.1:{running.runtime.port}") as channel,
        ):
            stub = pathway_pb2_grpc.PathwayServiceStub(channel)
            response = submit(stub, event(f"{HER}:R{n}"))
            assert response.pathway.stage == pathway_pb2.STAGE_ADMITTED


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure_logging("pathway-test", "INFO", stream=out)
    yield out
    logging.captureWarnings(False)
    structlog.reset_defaults()


def test_a_database_error_is_internal_and_never_quotes_the_national_id(
    server: Server, stub: Any, log_lines: io.StringIO
) -> None:
    def failing(*_: object, **__: object) -> None:
        statement = "INSERT INTO patient (national_id) VALUES (?)"
        raise IntegrityError(statement, (NID,), Exception("UNIQUE constraint failed"))

    server.runtime.store.record_event = failing  # type: ignore[method-assign]
    error = error_of(lambda: submit(stub, event()))
    reference = (error.details() or "").rpartition(" ")[2]
    assert (error.code(), NID in str(error.details()) + str(error.trailing_metadata())) == (
        grpc.StatusCode.INTERNAL,
        False,
    )
    logged = log_lines.getvalue()
    assert (reference in logged, "IntegrityError" in logged, NID in logged) == (True, True, False)
