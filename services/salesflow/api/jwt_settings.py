"""Settings of JWT authentication, ``SALESFLOW_API_JWT_*``: which issuer's access tokens the API takes.

The keys come from the issuer's JWKS, at ``jwks_url`` or, when that is unset, at the ``jwks_uri`` of the
issuer's OIDC discovery document (``<issuer>/.well-known/openid-configuration``).
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Asymmetric algorithms only: a JWKS publishes public keys, and an HMAC "verified" with a public key
# is the classic algorithm-confusion forgery. ``none`` is never an option.
Algorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


class JwtSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SALESFLOW_API_JWT_", env_file=".env", extra="ignore")

    issuer: str | None = None  # the `iss` every token must carry, exactly
    audience: Annotated[list[str], NoDecode] = Field(default_factory=list)  # `aud` must name one of these
    jwks_url: str | None = None  # default: from the issuer's OIDC discovery document
    algorithms: Annotated[list[Algorithm], NoDecode] = Field(default=["RS256", "ES256"])
    # Clock skew allowed on `exp`, `nbf` and `iat`; small, since a stolen token lives this much longer.
    leeway_seconds: float = Field(default=30.0, ge=0, le=300)
    # The claim naming the token's tenant (a string) or tenants (a list of strings). Dotted for nested.
    tenant_claim: str = "tenant_id"
    # Scopes come from `scope` (space-separated) and `scp` (a list or a string); this claim adds more,
    # e.g. Keycloak's realm roles `realm_access.roles`. Unset: scopes only.
    role_claim: str | None = None
    # How long fetched keys are used before they are fetched again (while the issuer answers).
    jwks_cache_seconds: float = Field(default=300.0, gt=0)
    # At most one fetch per this many seconds for a token whose `kid` is unknown: a stream of forged
    # kids cannot turn the API into a load generator against the identity provider.
    jwks_min_refetch_seconds: float = Field(default=30.0, ge=0)
    http_timeout_seconds: float = Field(default=5.0, gt=0)

    @field_validator("audience", "algorithms", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        """A JSON list, or names separated by commas (as an environment variable is easiest written)."""
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
        return value

    @property
    def configured(self) -> bool:
        return bool(self.issuer and self.audience)

    def discovery_url(self) -> str:
        assert self.issuer is not None
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"
