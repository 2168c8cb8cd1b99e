"""The issuer's signing keys: fetched from its JWKS (by URL, or found through OIDC discovery), cached.

Not PyJWT's ``PyJWKClient``: it fetches with blocking ``urllib`` (on the event loop, every request
would wait for the identity provider), and a failed fetch puts ``None`` into its cache, so an outage
of the JWKS endpoint drops the keys it had and refuses every token. Here a failed fetch keeps the
keys already held, and is only logged; tokens signed by them go on working through the outage.

An unknown ``kid`` (the issuer rotated its keys) triggers a fetch, at most one per
``jwks_min_refetch_seconds``: a flood of tokens with made-up kids cannot flood the issuer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from salesflow.api.jwt_settings import JwtSettings

log = logging.getLogger(__name__)

PUBLIC_KEY_TYPES = ("RSA", "EC", "OKP")


class JwksUnavailable(Exception):
    """No keys could be fetched, and none are cached."""


class JwksCache:
    def __init__(
        self,
        settings: JwtSettings,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._client = client or httpx.AsyncClient(timeout=settings.http_timeout_seconds, follow_redirects=False)
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # of the last successful fetch
        self._tried_at: float | None = None  # of the last attempt, successful or not
        self._jwks_url = settings.jwks_url
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The key named ``kid``; None when the issuer does not publish it (after a refetch, rate
        permitting). Raises ``JwksUnavailable`` only when no key was ever fetched."""
        if self._stale():
            await self._refresh(force=False)
        found = self._keys.get(kid)
        if found is None and self._may_refetch():
            await self._refresh(force=True)
            found = self._keys.get(kid)
        if found is None and self._fetched_at is None:
            raise JwksUnavailable("the issuer's JWKS could not be fetched")
        return found

    async def close(self) -> None:
        await self._client.aclose()

    def _stale(self) -> bool:
        now = self._clock()
        if self._fetched_at is not None and now - self._fetched_at < self.settings.jwks_cache_seconds:
            return False
        # Expired (or never fetched): try again, but not more often than a refetch for an unknown kid.
        return self._may_refetch()

    def _may_refetch(self) -> bool:
        return self._tried_at is None or self._clock() - self._tried_at >= self.settings.jwks_min_refetch_seconds

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            if self._tried_at is not None and not force and not self._stale():
                return  # another request refreshed while this one waited
            if force and not self._may_refetch():
                return
            self._tried_at = self._clock()
            try:
                self._keys = await self._fetch()
                self._fetched_at = self._clock()
            except (httpx.HTTPError, ValueError, KeyError, TypeError, jwt.PyJWKSetError) as exc:
                # Keep what is cached: the keys did not stop being valid because the issuer is down.
                log.warning("JWKS fetch failed (%d keys kept from before): %r", len(self._keys), exc)

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        url = self._jwks_url or await self._discover()
        answer = await self._client.get(url)
        answer.raise_for_status()
        found = _signing_keys(answer.json())
        self._jwks_url = url
        log.info("JWKS: %d signing keys from %s", len(found), url)
        return found

    async def _discover(self) -> str:
        answer = await self._client.get(self.settings.discovery_url())
        answer.raise_for_status()
        document = answer.json()
        if document.get("issuer") != self.settings.issuer:
            # OIDC Discovery 4.3: the document must name the issuer it was fetched for.
            raise ValueError(f"discovery names issuer {document.get('issuer')!r}, not {self.settings.issuer!r}")
        url = document["jwks_uri"]
        if not isinstance(url, str):
            raise TypeError("jwks_uri is not a string")
        return url


def _signing_keys(document: Any) -> dict[str, jwt.PyJWK]:
    """The keys of a JWKS that may verify signatures: with a ``kid``, not for encryption only.
    Keys PyJWT cannot use (an unknown type or curve) are skipped, as ``PyJWKSet`` does."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS: no `keys` list")
    found: dict[str, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str) or entry.get("use", "sig") != "sig":
            continue
        if entry.get("kty") not in PUBLIC_KEY_TYPES:
            continue  # a symmetric ("oct") key has no place in a published key set
        try:
            found[entry["kid"]] = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError):
            continue
    return found
