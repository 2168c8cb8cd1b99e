"""Access tokens of an OIDC provider to callers: signature by the issuer's JWKS, then the claims.

Checked, in order: the header (an allowed asymmetric ``alg``, a ``kid`` the issuer publishes), the
signature, ``iss``, ``aud``, ``exp`` and ``nbf`` (with a small leeway), a ``sub``. Then the tenant
claim and the scopes make the ``Principal``. Verification is PyJWT's (``jwt.decode`` with the key the
JWKS names); see jwks.py for why the keys are fetched here rather than by ``PyJWKClient``.
"""

from __future__ import annotations

from typing import Any

import jwt

from salesflow.api.http_errors import Forbidden, InvalidToken
from salesflow.api.jwks import JwksCache
from salesflow.api.jwt_settings import JwtSettings
from salesflow.api.principal import ADMIN, SCOPES, Principal

MAX_TOKEN_BYTES = 16 * 1024  # an access token is a few KB; anything larger is not worth parsing
MAX_TENANT_LENGTH = 200


class JwtVerifier:
    def __init__(self, settings: JwtSettings, keys: JwksCache | None = None) -> None:
        if not settings.configured:
            raise ValueError("JWT authentication needs SALESFLOW_API_JWT_ISSUER and SALESFLOW_API_JWT_AUDIENCE")
        self.settings = settings
        self.keys = keys or JwksCache(settings)

    async def verify(self, token: str) -> Principal:
        """The caller a token names. ``InvalidToken`` (401) when it is not a valid token of the
        issuer; ``Forbidden`` (403) when it is, but names no usable tenant."""
        claims = await self.claims(token)
        scopes = token_scopes(claims, self.settings.role_claim)
        tenants = None if ADMIN in scopes else token_tenants(claims, self.settings.tenant_claim)
        return Principal(subject=claims["sub"], issuer=claims["iss"], tenants=tenants, scopes=scopes)

    async def claims(self, token: str) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("the token is too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the token is not a JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.settings.algorithms:  # `none` and HS* are never in the list
            raise InvalidToken(f"algorithm {alg!r} is not accepted")
        if not isinstance(kid, str):
            raise InvalidToken("the token names no key (`kid`)")
        key = await self.keys.key(kid)
        if key is None:
            raise InvalidToken("the token's key is not one the issuer publishes")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=list(self.settings.algorithms),
                issuer=self.settings.issuer,
                audience=self.settings.audience,
                leeway=self.settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(_reason(exc)) from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise InvalidToken("`sub` is not a string")
        return claims


def claim(claims: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (``realm_access.roles``); None when any step is missing."""
    value: Any = claims
    for step in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def token_tenants(claims: dict[str, Any], path: str) -> frozenset[str]:
    """The tenants a token names: a string or a list of strings. Anything else is refused rather
    than guessed at (a number is not quietly the tenant of the same digits)."""
    value = claim(claims, path)
    if value is None:
        raise Forbidden(f"the token names no tenant (claim `{path}`)")
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(_tenant_like(v) for v in values):
        raise Forbidden(f"the token's tenant claim `{path}` is not a tenant id or a list of them")
    return frozenset(values)


def token_scopes(claims: dict[str, Any], role_claim: str | None) -> frozenset[str]:
    """The known scopes among ``scope`` (space-separated), ``scp`` and the role claim."""
    found: set[str] = set()
    for value in (claims.get("scope"), claims.get("scp"), claim(claims, role_claim) if role_claim else None):
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return frozenset(found & set(SCOPES))


def _tenant_like(value: Any) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_TENANT_LENGTH
        and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)
    )


def _reason(exc: jwt.PyJWTError) -> str:
    """What was wrong, in words that help the caller and tell a forger nothing new."""
    reasons: list[tuple[type[jwt.PyJWTError], str]] = [
        (jwt.ExpiredSignatureError, "the token has expired"),
        (jwt.ImmatureSignatureError, "the token is not valid yet"),
        (jwt.InvalidIssuerError, "the token is of another issuer"),
        (jwt.InvalidAudienceError, "the token is for another audience"),
        (jwt.MissingRequiredClaimError, "the token lacks a required claim"),
        (jwt.InvalidSignatureError, "the token's signature does not verify"),
    ]
    return next((text for kind, text in reasons if isinstance(exc, kind)), "the token is not valid")
