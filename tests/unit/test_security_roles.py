"""Scoped roles, their checks, and bearer tokens loaded from a file (hashed at rest)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest

from overgang.config import Settings
from overgang.grpc.auth import (
    ANONYMOUS,
    Authenticator,
    Role,
    RoleError,
    RoleKind,
    bearer,
    covers_unit,
    listing_scope,
    may_act_for_municipality,
    may_read_episode,
    may_read_statements,
    may_see_pathway_details,
    may_submit_for_hospital,
)
from overgang.grpc.tokens import hashed_line, main

HOSPITAL = Role.parse("hospital:12345678")
COORDINATOR = Role.parse("coordinator:1103/HEALTH_OFFICE")
SUB_UNIT = Role.parse("coordinator:1103/HEALTH_OFFICE/EIGANES")
FINANCE_KOMMUNE = Role.parse("finance:1103")
FINANCE_HOSPITAL = Role.parse("finance:12345678")
OPS = Role.parse("ops")


def test_roles_expose_their_scope() -> None:
    assert (HOSPITAL.kind, HOSPITAL.her_id, HOSPITAL.municipality) == (
        RoleKind.HOSPITAL,
        "12345678",
        "",
    )
    assert (SUB_UNIT.kind, SUB_UNIT.municipality, SUB_UNIT.unit) == (
        RoleKind.COORDINATOR,
        "1103",
        "HEALTH_OFFICE/EIGANES",
    )
    assert (FINANCE_KOMMUNE.municipality, FINANCE_KOMMUNE.her_id) == ("1103", "")
    assert (FINANCE_HOSPITAL.municipality, FINANCE_HOSPITAL.her_id) == ("", "12345678")
    assert Role.parse("finance:her:1234").her_id == "1234"
    assert Role.parse("finance:kommune:0301").municipality == "0301"
    assert OPS.is_ops and str(SUB_UNIT) == "coordinator:1103/HEALTH_OFFICE/EIGANES"
    # the old fields stay
    assert (COORDINATOR.name, COORDINATOR.scope) == ("coordinator", "1103/HEALTH_OFFICE")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("coordinator:HEALTH_OFFICE", "names no municipality"),
        ("coordinator:1103", "coordinator:<kommunenummer>/<unit>"),
        ("coordinator:1103/", "coordinator:<kommunenummer>/<unit>"),
        ("coordinator:110/NAV", "names no municipality"),
        ("hospital:", "hospital:<her-id>"),
        ("hospital:abc", "hospital:<her-id>"),
        ("finance", "finance:<kommunenummer>"),
        ("finance:oslo", "finance:<kommunenummer>"),
        ("ops:all", "ops takes no scope"),
        ("admin", "unknown role"),
    ],
)
def test_malformed_roles_are_refused_at_load_time(text: str, complaint: str) -> None:
    with pytest.raises(RoleError, match=complaint):
        Role.parse(text)
    with pytest.raises(RoleError, match=complaint):
        Authenticator(f"tok={text}", tokens_file="")


def test_episode_reads_follow_the_callers_scope() -> None:
    assert may_read_episode(HOSPITAL, "4601", "12345678")
    assert not may_read_episode(HOSPITAL, "1103", "99999")
    assert may_read_episode(COORDINATOR, "1103", "99999")
    assert not may_read_episode(COORDINATOR, "4601", "12345678")
    assert may_read_episode(FINANCE_KOMMUNE, "1103", "x") and may_read_episode(OPS, "", "")
    assert not may_read_episode(FINANCE_HOSPITAL, "1103", "99999")
    assert not may_read_episode(COORDINATOR, "", "")  # unknown municipality: no
    assert [may_see_pathway_details(r) for r in (HOSPITAL, COORDINATOR, FINANCE_KOMMUNE)] == [
        True,
        True,
        False,
    ]


def test_municipal_acts_and_units_stay_in_the_municipality() -> None:
    assert may_act_for_municipality(COORDINATOR, "1103") and may_act_for_municipality(OPS, "")
    assert not may_act_for_municipality(COORDINATOR, "4601")
    assert not may_act_for_municipality(HOSPITAL, "1103")
    assert not may_act_for_municipality(FINANCE_KOMMUNE, "1103")
    assert covers_unit(COORDINATOR, "1103", "HEALTH_OFFICE")
    assert covers_unit(COORDINATOR, "1103", "HEALTH_OFFICE/EIGANES")
    assert not covers_unit(COORDINATOR, "4601", "HEALTH_OFFICE")  # same unit, other kommune
    assert not covers_unit(COORDINATOR, "1103", "HEALTH_OFFICE_X")
    assert not covers_unit(SUB_UNIT, "1103", "HEALTH_OFFICE")
    assert not covers_unit(COORDINATOR, "1103", "NAV")


def test_statements_by_municipality_or_hospital() -> None:
    assert may_read_statements(FINANCE_KOMMUNE, municipality="1103")
    assert not may_read_statements(FINANCE_KOMMUNE, municipality="4601")
    assert not may_read_statements(FINANCE_KOMMUNE)  # an unfiltered query: ops only
    assert may_read_statements(FINANCE_HOSPITAL, her_id="12345678")
    assert not may_read_statements(FINANCE_HOSPITAL, municipality="1103")
    assert may_read_statements(HOSPITAL, her_id="12345678")
    assert may_read_statements(COORDINATOR, municipality="1103") and may_read_statements(OPS)
    assert listing_scope(FINANCE_KOMMUNE).municipality == "1103"
    assert listing_scope(HOSPITAL).her_id == "12345678"
    assert listing_scope(OPS) == listing_scope(Role.parse("ops"))
    assert may_submit_for_hospital(HOSPITAL, "12345678")
    assert not may_submit_for_hospital(HOSPITAL, "99999")
    assert not may_submit_for_hospital(COORDINATOR, "12345678")


def test_tokens_file_hashed_plain_comments_and_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(
        "# who may call\n"
        f"{hashed_line('s3cret-coord', 'coordinator:1103/HEALTH_OFFICE', 'kari')}\n"
        "\n"
        f"{hashed_line('s3cret-ops', 'ops')}   # the on-call\n"
        "plain-token=hospital:12345678\n",
        encoding="utf-8",
    )
    assert "s3cret" not in tokens.read_text(encoding="utf-8").split("plain-token")[0]
    auth = Authenticator.from_settings(Settings(auth_tokens_file=str(tokens)))
    coordinator = auth.caller_for(bearer("s3cret-coord"))
    assert coordinator is not None
    assert (str(coordinator.role), coordinator.identity) == (
        "coordinator:1103/HEALTH_OFFICE",
        "kari",
    )
    ops = auth.caller_for(bearer("s3cret-ops"))
    assert ops is not None and ops.identity.startswith("ops#") and len(ops.identity) == 12
    assert auth.role_for(bearer("plain-token")) == HOSPITAL
    assert auth.caller_for(bearer("wrong")) is None
    assert auth.caller_for([]) is None
    assert auth.caller_for([("authorization", "Basic s3cret-ops")]) is None
    captured = capsys.readouterr()
    assert "auth.plain_tokens" in captured.out + captured.err


def test_env_tokens_still_work_and_no_tokens_means_anonymous_ops() -> None:
    auth = Authenticator("t-ops=ops,t-h=hospital:777", tokens_file="")
    assert auth.enabled and auth.role_for(bearer("t-h")) == Role.parse("hospital:777")
    assert auth.role_for(bearer("t-ops")) == OPS
    open_auth = Authenticator("", tokens_file="")
    assert not open_auth.enabled and open_auth.caller_for([]) is ANONYMOUS


def test_a_token_listed_twice_or_a_bad_line_stops_loading(tmp_path: Path) -> None:
    with pytest.raises(RoleError, match="listed twice"):
        Authenticator("a=ops,a=hospital:1", tokens_file="")
    bad = tmp_path / "tokens"
    bad.write_text("sha256:abc=ops\n", encoding="utf-8")
    with pytest.raises(RoleError, match=r"tokens:1: sha256: must be followed by 64 hex"):
        Authenticator(tokens_file=str(bad))
    with pytest.raises(RoleError, match="No such file"):
        Authenticator(tokens_file=str(tmp_path / "missing"))


def test_token_tool_prints_a_token_and_its_hashed_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["finance:1103", "ola"]) == 0
    out = capsys.readouterr().out.splitlines()
    token = out[0].rpartition(" ")[2]
    line = out[1].partition(": ")[2]
    assert token not in line and line.endswith("=finance:1103 ola")
    auth = Authenticator(line, tokens_file="")
    caller = auth.caller_for(bearer(token))
    assert caller is not None and caller.identity == "ola"


class _Aborted(Exception):
    pass


class _Context:
    def __init__(self, metadata: list[tuple[str, str]]) -> None:
        self.metadata = metadata
        self.aborted: tuple[Any, str] | None = None

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return self.metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1234"

    async def abort(self, code: Any, message: str) -> None:
        self.aborted = (code, message)
        raise _Aborted


def test_require_returns_the_role_or_aborts() -> None:
    auth = Authenticator("t-c=coordinator:1103/NAV name-c", tokens_file="")

    async def run(metadata: list[tuple[str, str]], allowed: Any) -> Any:
        context = _Context(metadata)
        try:
            return await auth.require_caller(context, allowed, "claim tasks")
        except _Aborted:
            return context.aborted

    caller = asyncio.run(run(bearer("t-c"), lambda r: True))
    assert caller.identity == "name-c" and caller.role.unit == "NAV"
    assert asyncio.run(run([], lambda r: True))[0] is grpc.StatusCode.UNAUTHENTICATED
    denied = asyncio.run(run(bearer("t-c"), lambda r: r.is_ops))
    assert denied == (
        grpc.StatusCode.PERMISSION_DENIED,
        "role coordinator:1103/NAV may not claim tasks",
    )
    role = asyncio.run(auth.require(_Context(bearer("t-c")), lambda r: True, "x"))  # type: ignore[arg-type]
    assert role == Role.parse("coordinator:1103/NAV")
