"""Bearer tokens mapped to roles.

Roles: `hospital:<her-id>` (submit its own events only), `coordinator:<unit>` (its own
unit's tasks), `ops`, `finance`. With no tokens configured, auth is off and every caller
is `ops`: for a laptop only, and the services log a warning at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc


@dataclass(frozen=True)
class Role:
    name: str  # hospital, coordinator, ops, finance
    scope: str = ""  # her-id or unit

    @classmethod
    def parse(cls, text: str) -> Role:
        name, _, scope = text.strip().partition(":")
        if name not in {"hospital", "coordinator", "ops", "finance"}:
            raise ValueError(f"unknown role {name!r}")
        if name in {"hospital", "coordinator"} and not scope:
            raise ValueError(f"role {name!r} needs a scope, e.g. {name}:<id>")
        return cls(name, scope)

    def __str__(self) -> str:
        return f"{self.name}:{self.scope}" if self.scope else self.name


OPS = Role("ops")


class Authenticator:
    def __init__(self, tokens: str) -> None:
        self._roles: dict[str, Role] = {}
        for pair in filter(None, (p.strip() for p in tokens.split(","))):
            token, _, role = pair.partition("=")
            self._roles[token.strip()] = Role.parse(role)

    @property
    def enabled(self) -> bool:
        return bool(self._roles)

    def role_for(self, metadata: Any) -> Role | None:
        if not self.enabled:
            return OPS
        for key, value in metadata or ():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                return self._roles.get(value.removeprefix("Bearer ").strip())
        return None

    async def require(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        allowed: Callable[[Role], bool],
        what: str,
    ) -> Role:
        role = self.role_for(context.invocation_metadata())
        if role is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or unknown bearer token")
            raise AssertionError("unreachable")
        if not allowed(role):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"role {role} may not {what}")
            raise AssertionError("unreachable")
        return role


def bearer(token: str) -> list[tuple[str, str]]:
    """Client-side call metadata."""
    return [("authorization", f"Bearer {token}")]
