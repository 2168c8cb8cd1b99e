"""Bearer tokens to callers, and the scope each route needs.

Two ways in, chosen in the settings (``SALESFLOW_API_AUTH``): ``jwt``, access tokens of an OIDC
provider (jwt_auth.py), and ``static``, tokens from the settings file (a tenant's token reads and
replays its tenant; an admin token does everything, across tenants), for local and dev use. Both may
be on at once while moving from one to the other. An unknown or missing token is a 401, never a hint;
a caller without the scope or tenant a route needs, a 403.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from salesflow.api.api_settings import ApiSettings
from salesflow.api.http_errors import Forbidden, InvalidToken, Unavailable
from salesflow.api.jwks import JwksUnavailable
from salesflow.api.jwt_auth import JwtVerifier
from salesflow.api.principal import ADMIN, READ, REPLAY, Principal, TenantScope

__all__ = ["Authenticator", "Caller", "Principal", "TenantScope", "TokenTable"]

STATIC_ISSUER = "static"
ADMIN_OWNER = "*admin*"
TENANT_SCOPES = frozenset({READ, REPLAY})


class TokenTable:
    """Resolves a presented static token to its owner. Comparisons are constant-time."""

    def __init__(self, settings: ApiSettings) -> None:
        self._entries = [(owner, token.get_secret_value().encode()) for owner, token in settings.token_owners()]

    def __len__(self) -> int:
        return len(self._entries)

    def resolve(self, presented: str) -> Principal | None:
        given = presented.encode("utf-8", "replace")
        found: str | None = None
        for owner, token in self._entries:
            # Look at every entry, whatever matches: the time taken says nothing about which one did.
            if hmac.compare_digest(given, token):
                found = owner
        if found is None:
            return None
        # The audit trail names the token by a fingerprint, so a rotated token is told from its successor.
        subject = f"{found}#{hashlib.sha256(given).hexdigest()[:10]}"
        if found == ADMIN_OWNER:
            return Principal(subject, STATIC_ISSUER, None, frozenset({ADMIN, READ, REPLAY}))
        return Principal(subject, STATIC_ISSUER, frozenset({found}), TENANT_SCOPES)


class Authenticator:
    """The ways in the settings switch on, tried in turn: a JWT (three dot-separated parts) goes to the
    JWT verifier when it is on, anything else to the static tokens."""

    def __init__(self, settings: ApiSettings, jwt_verifier: JwtVerifier | None = None) -> None:
        modes = settings.auth_modes()
        self.tokens = TokenTable(settings) if "static" in modes else None
        # JWT chosen but its issuer or audience unset: no way in by JWT (``salesflow api`` refuses to start).
        jwt_on = "jwt" in modes and (jwt_verifier is not None or settings.jwt.configured)
        self.jwt = (jwt_verifier or JwtVerifier(settings.jwt)) if jwt_on else None

    @property
    def configured(self) -> bool:
        return self.jwt is not None or bool(self.tokens and len(self.tokens))

    async def authenticate(self, token: str) -> Principal:
        if self.jwt is not None and token.count(".") == 2:
            try:
                return await self.jwt.verify(token)
            except JwksUnavailable:
                raise Unavailable("the identity provider's keys (JWKS)") from None
        found = self.tokens.resolve(token) if self.tokens is not None else None
        if found is None:
            raise InvalidToken("invalid bearer token")
        return found

    async def close(self) -> None:
        if self.jwt is not None:
            await self.jwt.keys.close()


bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description=(
        "An access token of the configured OIDC issuer (scopes `events:read`, `events:replay`, `admin`; "
        "a tenant claim), or a static token from the settings (local and dev use)."
    ),
)


def requires(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency: the caller, who must hold ``scope`` (``admin`` holds every scope)."""

    async def caller(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Principal:
        if credentials is None:
            raise InvalidToken("missing bearer token: send `Authorization: Bearer <token>`", presented=False)
        authenticator: Authenticator = request.app.state.authenticator
        found = await authenticator.authenticate(credentials.credentials)
        if not found.allows(scope):
            raise Forbidden(f"this needs the scope `{scope}`", scope=scope)
        request.state.principal = found  # for the access log and the audit trail
        return found

    return caller


Caller = Annotated[Principal, Depends(requires(READ))]  # every read
ReplayCaller = Annotated[Principal, Depends(requires(REPLAY))]
AdminCaller = Annotated[Principal, Depends(requires(ADMIN))]
