"""Bearer tokens mapped to scoped roles (`overgang.grpc.roles`), loaded from
`OVERGANG_AUTH_TOKENS` and/or `OVERGANG_AUTH_TOKENS_FILE` (`overgang.grpc.tokens`).

With no tokens configured, auth is off and every caller is `ops`: `GrpcServer` allows that
only on a loopback address (or with `OVERGANG_INSECURE_DEV=1`) and logs a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import grpc

from overgang.audit import Audit, peer_of
from overgang.config import Settings, load_settings
from overgang.grpc.roles import (
    OPS,
    Caller,
    ListingScope,
    Role,
    RoleError,
    RoleKind,
    covers_unit,
    listing_scope,
    may_act_for_municipality,
    may_dispute_for_municipality,
    may_read_episode,
    may_read_statements,
    may_resolve_for_hospital,
    may_see_pathway_details,
    may_submit_for_hospital,
)
from overgang.grpc.tokens import TokenTable
from overgang.logging import get_logger

__all__ = [
    "ANONYMOUS",
    "OPS",
    "Authenticator",
    "Caller",
    "ListingScope",
    "Role",
    "RoleError",
    "RoleKind",
    "bearer",
    "covers_unit",
    "listing_scope",
    "may_act_for_municipality",
    "may_dispute_for_municipality",
    "may_read_episode",
    "may_read_statements",
    "may_resolve_for_hospital",
    "may_see_pathway_details",
    "may_submit_for_hospital",
]

log = get_logger(__name__)
Context = Any  # grpc.aio.ServicerContext (untyped library)

# Every caller when auth is off (loopback / OVERGANG_INSECURE_DEV only).
ANONYMOUS = Caller(OPS, "anonymous (auth off)")


def _bearer_token(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


class Authenticator:
    """Prefer `Authenticator.from_settings(settings)`. `Authenticator(tokens)` works as
    before (a comma-separated `token=role` list) and, unless `tokens_file` is given ("" for
    none), also reads `OVERGANG_AUTH_TOKENS_FILE` from the environment, so that a file-only
    configuration never leaves an old call site with auth off.

    `audit`: where refused calls are recorded (`overgang.audit`); a servicer given an
    `Audit` attaches it here when none was set."""

    def __init__(
        self, tokens: str = "", *, tokens_file: str | None = None, audit: Audit | None = None
    ) -> None:
        if tokens_file is None:
            tokens_file = load_settings().auth_tokens_file
        self._table = TokenTable.load(tokens, tokens_file)
        self.audit = audit

    @classmethod
    def from_settings(cls, settings: Settings, *, audit: Audit | None = None) -> Authenticator:
        return cls(settings.auth_tokens, tokens_file=settings.auth_tokens_file, audit=audit)

    @property
    def enabled(self) -> bool:
        return len(self._table) > 0

    def caller_for(self, metadata: Any) -> Caller | None:
        """The caller of these call metadata; None when the token is missing or unknown."""
        if not self.enabled:
            return ANONYMOUS
        token = _bearer_token(metadata)
        return self._table.caller_for(token) if token else None

    def role_for(self, metadata: Any) -> Role | None:
        caller = self.caller_for(metadata)
        return caller.role if caller else None

    async def authenticate(self, context: Context) -> Caller:
        """The caller, or the call ends UNAUTHENTICATED."""
        caller = self.caller_for(context.invocation_metadata())
        if caller is None:
            log.warning("auth.unauthenticated", peer=peer_of(context))
            if self.audit is not None:
                self.audit.refused(context, None, "missing or unknown bearer token")
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or unknown bearer token")
            raise AssertionError("unreachable")
        return caller

    async def deny(
        self, context: Context, caller: Caller, what: str, *, episode_id: str = ""
    ) -> NoReturn:
        """End the call PERMISSION_DENIED (after a scope check on the data itself); the
        audit record names the episode asked for, if any."""
        log.warning("auth.refused", identity=caller.identity, peer=peer_of(context), what=what)
        if self.audit is not None:
            self.audit.refused(context, caller, what, episode_id=episode_id)
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"role {caller.role} may not {what}")
        raise AssertionError("unreachable")

    async def require_caller(
        self, context: Context, allowed: Callable[[Role], bool], what: str
    ) -> Caller:
        """The caller if `allowed(role)`; else UNAUTHENTICATED / PERMISSION_DENIED."""
        caller = await self.authenticate(context)
        if not allowed(caller.role):
            await self.deny(context, caller, what)
        return caller

    async def require(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        allowed: Callable[[Role], bool],
        what: str,
    ) -> Role:
        return (await self.require_caller(context, allowed, what)).role


def bearer(token: str) -> list[tuple[str, str]]:
    """Client-side call metadata."""
    return [("authorization", f"Bearer {token}")]
