"""Roles scoped by who the caller is, and the pure scope checks the services make.

- `hospital:<her-id>`: submits and reads its own episodes (and their statements).
- `coordinator:<kommunenummer>/<unit>[/<sub-unit>...]`: its municipality's episodes and the
  tasks of that unit and the units below it, e.g. `coordinator:1103/HEALTH_OFFICE/EIGANES`.
- `finance:<kommunenummer>` or `finance:<her-id>`: statements of that municipality or
  hospital, no pathway details. Four digits are a kommunenummer; write
  `finance:her:<her-id>` / `finance:kommune:<kommunenummer>` to say which explicitly.
- `ops`: everything but national ids.

A role is parsed once, when the tokens are loaded: a malformed one (such as the old
`coordinator:HEALTH_OFFICE`, which named no municipality) stops the service at start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class RoleKind(StrEnum):
    HOSPITAL = "hospital"
    COORDINATOR = "coordinator"
    FINANCE = "finance"
    OPS = "ops"


class RoleError(ValueError):
    """A role that does not parse: raised at load time, never per call."""


_KOMMUNENUMMER = re.compile(r"\d{4}")
_HER_ID = re.compile(r"\d{1,12}")
_UNIT = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")


@dataclass(frozen=True)
class Role:
    """`name` and `scope` are the role's text as before (`coordinator`, `1103/HEALTH_OFFICE`);
    the typed accessors below are what scope checks should use."""

    name: str  # a RoleKind value
    scope: str = ""

    @classmethod
    def parse(cls, text: str) -> Role:
        name, _, scope = text.strip().partition(":")
        try:
            kind = RoleKind(name)
        except ValueError:
            known = ", ".join(k.value for k in RoleKind)
            raise RoleError(f"unknown role {name!r} in {text!r} (known: {known})") from None
        role = cls(kind.value, scope.strip())
        role._validate(text)
        return role

    def _validate(self, text: str) -> None:
        kind, scope = self.kind, self.scope
        if kind is RoleKind.OPS:
            if scope:
                raise RoleError(f"role {text!r}: ops takes no scope")
        elif kind is RoleKind.HOSPITAL:
            if not _HER_ID.fullmatch(scope):
                raise RoleError(f"role {text!r}: write hospital:<her-id> (digits)")
        elif kind is RoleKind.COORDINATOR:
            municipality, _, unit = scope.partition("/")
            if not _KOMMUNENUMMER.fullmatch(municipality):
                raise RoleError(
                    f"role {text!r} names no municipality: write "
                    f"coordinator:<kommunenummer>/<unit>, e.g. coordinator:1103/"
                    f"{scope or 'HEALTH_OFFICE'} (a unit name alone matches every municipality)"
                )
            if not _UNIT.fullmatch(unit):
                raise RoleError(
                    f"role {text!r}: write coordinator:<kommunenummer>/<unit>[/<sub-unit>]"
                )
        elif self._finance_scope() is None:
            raise RoleError(
                f"role {text!r}: write finance:<kommunenummer> (4 digits) or "
                f"finance:<her-id> (finance:kommune:<nr> / finance:her:<id> to be explicit)"
            )

    def _finance_scope(self) -> tuple[str, str] | None:
        """(municipality, her_id) of a finance role, one of them empty."""
        form, _, value = self.scope.partition(":")
        if value:
            if form == "kommune" and _KOMMUNENUMMER.fullmatch(value):
                return value, ""
            if form == "her" and _HER_ID.fullmatch(value):
                return "", value
            return None
        if _KOMMUNENUMMER.fullmatch(self.scope):
            return self.scope, ""
        if _HER_ID.fullmatch(self.scope):
            return "", self.scope
        return None

    @property
    def kind(self) -> RoleKind:
        return RoleKind(self.name)

    @property
    def municipality(self) -> str:
        """The kommunenummer of a coordinator or municipal finance role, else ""."""
        if self.kind is RoleKind.COORDINATOR:
            return self.scope.partition("/")[0]
        if self.kind is RoleKind.FINANCE:
            return (self._finance_scope() or ("", ""))[0]
        return ""

    @property
    def her_id(self) -> str:
        """The HER-id of a hospital or hospital finance role, else ""."""
        if self.kind is RoleKind.HOSPITAL:
            return self.scope
        if self.kind is RoleKind.FINANCE:
            return (self._finance_scope() or ("", ""))[1]
        return ""

    @property
    def unit(self) -> str:
        """A coordinator's unit path below the municipality (`HEALTH_OFFICE/EIGANES`)."""
        return self.scope.partition("/")[2] if self.kind is RoleKind.COORDINATOR else ""

    @property
    def is_ops(self) -> bool:
        return self.kind is RoleKind.OPS

    def __str__(self) -> str:
        return f"{self.name}:{self.scope}" if self.scope else self.name


OPS = Role(RoleKind.OPS.value)


@dataclass(frozen=True)
class Caller:
    """Who is calling: the role and a stable identity for audit records and task claims
    (the token's name from the tokens file, else the role and a short token fingerprint)."""

    role: Role
    identity: str


@dataclass(frozen=True)
class ListingScope:
    """What a list or watch query must be narrowed to; "" = not narrowed by that field."""

    municipality: str = ""
    her_id: str = ""


def unit_covers(scope_unit: str, unit: str) -> bool:
    """`scope_unit` covers `unit`: the same unit or one below it."""
    return unit == scope_unit or unit.startswith(scope_unit + "/")


def may_submit_for_hospital(role: Role, her_id: str) -> bool:
    """Submit hospital events of an episode of that HER-id."""
    return role.is_ops or (role.kind is RoleKind.HOSPITAL and role.her_id == her_id)


def _in_scope(role: Role, municipality: str | None, her_id: str | None) -> bool:
    """Every role but ops is scoped by exactly one of a municipality or a HER-id."""
    if role.is_ops:
        return True
    if role.municipality:
        return bool(municipality) and role.municipality == municipality
    return bool(her_id) and role.her_id == her_id


def may_read_episode(role: Role, municipality: str, her_id: str) -> bool:
    """See anything about one episode (its pathway needs `may_see_pathway_details` too):
    a hospital its HER-id's, a coordinator its municipality's, finance its scope's."""
    return _in_scope(role, municipality, her_id)


def may_see_pathway_details(role: Role) -> bool:
    """Stages, needs, units, history: not for finance, which sees statements only."""
    return role.kind is not RoleKind.FINANCE


def may_act_for_municipality(role: Role, municipality: str) -> bool:
    """Answer the hospital or report service ready for an episode of that municipality."""
    if role.is_ops:
        return True
    return (
        role.kind is RoleKind.COORDINATOR
        and bool(municipality)
        and role.municipality == municipality
    )


def covers_unit(role: Role, municipality: str, unit: str) -> bool:
    """See, claim and complete tasks of `unit` in `municipality`."""
    if role.is_ops:
        return True
    return may_act_for_municipality(role, municipality) and unit_covers(role.unit, unit)


def may_read_statements(
    role: Role, municipality: str | None = None, her_id: str | None = None
) -> bool:
    """Liability statements of an episode (or a query) of this municipality / hospital;
    a query that names neither is for ops only."""
    return _in_scope(role, municipality, her_id)


def may_dispute_for_municipality(role: Role, municipality: str) -> bool:
    """Dispute liable days this municipality pays: its coordinators or finance office."""
    if role.is_ops:
        return True
    return (
        role.kind in (RoleKind.COORDINATOR, RoleKind.FINANCE)
        and bool(municipality)
        and role.municipality == municipality
    )


def may_resolve_for_hospital(role: Role, her_id: str) -> bool:
    """Accept or reject a dispute of this hospital's episode: the hospital or its finance."""
    if role.is_ops:
        return True
    return (
        role.kind in (RoleKind.HOSPITAL, RoleKind.FINANCE)
        and bool(her_id)
        and role.her_id == her_id
    )


def listing_scope(role: Role) -> ListingScope:
    """The filter every list/watch query of this role is narrowed to (ops: none)."""
    return ListingScope(municipality=role.municipality, her_id=role.her_id)
