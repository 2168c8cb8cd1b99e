"""Who is calling, and what that lets them see: tenants and scopes, whichever way they authenticated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

READ: Final = "events:read"
REPLAY: Final = "events:replay"
ADMIN: Final = "admin"
SCOPES: Final = (READ, REPLAY, ADMIN)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``tenants`` None: every tenant (an admin). ``issuer`` is the token's ``iss``, or ``static`` for a
    token from the settings file; ``subject`` names the caller in the audit trail."""

    subject: str
    issuer: str
    tenants: frozenset[str] | None
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or ADMIN in self.scopes

    def scope(self, requested: str | None = None) -> TenantScope:
        """The tenants a query may see: the caller's own, narrowed to ``requested`` when given. A tenant
        asking for another tenant sees nothing: the same answer as for data that is not there."""
        if self.tenants is None:
            return TenantScope(None if requested is None else frozenset({requested}))
        if requested is None:
            return TenantScope(self.tenants, empty=not self.tenants)
        return TenantScope(frozenset({requested}), empty=requested not in self.tenants)


@dataclass(frozen=True)
class TenantScope:
    tenants: frozenset[str] | None  # None: every tenant (admin only)
    empty: bool = False  # nothing is visible: no query needs to run
