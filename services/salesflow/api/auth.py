"""Bearer tokens to callers: a tenant's token scopes every query to that tenant; an admin token may cross
tenants. Comparisons are constant-time; an unknown or missing token is a 401, never a hint."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from salesflow.api.api_settings import ApiSettings
from salesflow.api.http_errors import ApiError


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant, or an admin (``tenant_id`` None)."""

    tenant_id: str | None

    @property
    def admin(self) -> bool:
        return self.tenant_id is None

    def scope(self, requested: str | None = None) -> TenantScope:
        """The tenants a query may see: the caller's own, narrowed (admins: chosen) by ``requested``."""
        if self.admin:
            return TenantScope(requested)
        # A tenant asking for another tenant sees nothing: the same answer as for data that is not there.
        return TenantScope(self.tenant_id, empty=requested is not None and requested != self.tenant_id)


@dataclass(frozen=True)
class TenantScope:
    tenant_id: str | None  # None: every tenant (admin only)
    empty: bool = False


class TokenTable:
    """Resolves a presented token to its owner."""

    def __init__(self, settings: ApiSettings) -> None:
        self._entries = [(owner, token.get_secret_value().encode()) for owner, token in settings.token_owners()]

    def __len__(self) -> int:
        return len(self._entries)

    def resolve(self, presented: str) -> Principal | None:
        given = presented.encode("utf-8", "replace")
        found: Principal | None = None
        for owner, token in self._entries:
            # Look at every entry, whatever matches: the time taken says nothing about which one did.
            if hmac.compare_digest(given, token):
                found = Principal(None if owner == "*admin*" else owner)
        return found


bearer = HTTPBearer(auto_error=False, description="A tenant's API token, or an admin token.")


async def caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The FastAPI dependency every ``/api`` route uses."""
    if credentials is None:
        raise ApiError(401, "missing bearer token: send `Authorization: Bearer <token>`")
    tokens: TokenTable = request.app.state.tokens
    found = tokens.resolve(credentials.credentials)
    if found is None:
        raise ApiError(401, "invalid bearer token")
    return found


Caller = Annotated[Principal, Depends(caller)]
