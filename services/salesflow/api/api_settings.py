"""Settings of the HTTP API: ``SALESFLOW_API_*`` environment variables, a ``.env`` file, or secret files.

Bearer tokens map to a tenant. ``SALESFLOW_API_TOKENS`` is a JSON object from tenant to its token (or
a list of tokens, so one can be rotated without downtime); ``SALESFLOW_API_ADMIN_TOKENS`` a JSON list
of admin tokens, which may read and replay across tenants. Either may come from a file instead, as
Docker and Kubernetes mount secrets: ``SALESFLOW_API_TOKENS_FILE`` / ``SALESFLOW_API_ADMIN_TOKENS_FILE``
(the same JSON; an admin file may also hold one bare token). Tokens are ``SecretStr``: never logged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from salesflow.api.jwt_settings import JwtSettings
from salesflow.errors import ConfigurationError
from salesflow.secrets import FileSecretsSettings, SecretFilesSource

MIN_TOKEN_LENGTH = 16  # a guessable token is no authentication


class TokenFilesSource(SecretFilesSource):
    """``SALESFLOW_API_TOKENS_FILE`` and ``SALESFLOW_API_ADMIN_TOKENS_FILE``: the tokens, as JSON, from files."""

    def fields(self) -> list[str]:
        return ["tokens", "admin_tokens"]

    def decode(self, field_name: str, variable: str, path: str, content: str) -> tuple[Any, str, bool]:
        try:
            return json.loads(content), field_name, True
        except json.JSONDecodeError:
            if field_name == "admin_tokens" and "\n" not in content.strip():
                return content.strip(), field_name, False  # one bare token
            raise ConfigurationError(f"{variable}_FILE: {path} is not JSON") from None


class ApiSettings(FileSecretsSettings):
    """Where the API listens, who may call it, and its limits."""

    model_config = SettingsConfigDict(env_prefix="SALESFLOW_API_", env_file=".env", extra="ignore")
    files_source = TokenFilesSource

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # The ways in (docs/operations/securing-the-api.md): "static" (the tokens below; local and dev
    # use), "jwt" (an OIDC provider's access tokens, SALESFLOW_API_JWT_*), or "jwt,static" while moving.
    auth: Annotated[list[Literal["static", "jwt"]], NoDecode] = Field(default=["static"], min_length=1)
    tokens: dict[str, list[SecretStr]] = Field(default_factory=dict)
    admin_tokens: list[SecretStr] = Field(default_factory=list)
    jwt: JwtSettings = Field(default_factory=JwtSettings)
    # How long /readyz waits for Postgres and Kafka before calling the service not ready.
    ready_timeout_seconds: float = Field(default=2.0, gt=0)

    @field_validator("tokens", mode="before")
    @classmethod
    def _one_token_or_many(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {tenant: [tokens] if isinstance(tokens, str) else tokens for tenant, tokens in value.items()}
        return value

    @field_validator("auth", mode="before")
    @classmethod
    def _modes(cls, value: Any) -> Any:
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value

    @field_validator("admin_tokens", mode="before")
    @classmethod
    def _one_admin_token_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _tokens_are_strong_and_unambiguous(self) -> ApiSettings:
        owners: dict[str, str] = {}
        for owner, token in self.token_owners():
            secret = token.get_secret_value()
            if len(secret) < MIN_TOKEN_LENGTH:
                raise ValueError(f"a token of {owner!r} is shorter than {MIN_TOKEN_LENGTH} characters")
            if secret in owners and owners[secret] != owner:
                raise ValueError(f"one token is given to both {owners[secret]!r} and {owner!r}")
            owners[secret] = owner
        if any(not tenant.strip() for tenant in self.tokens):
            raise ValueError("a tenant id in SALESFLOW_API_TOKENS is empty")
        return self

    def auth_modes(self) -> frozenset[str]:
        return frozenset(self.auth)

    def token_owners(self) -> list[tuple[str, SecretStr]]:
        """Every (tenant, token) pair; admin tokens are owned by ``*admin*``."""
        pairs = [(tenant, token) for tenant, tokens in self.tokens.items() for token in tokens]
        return pairs + [("*admin*", token) for token in self.admin_tokens]
