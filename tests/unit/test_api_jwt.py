"""JWT authentication against a JWKS served by the test: what a forger, a stale token, a rotated key and
an identity-provider outage each get. No database: every refusal happens before a route reads one."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from salesflow.api import ApiSettings, create_app
from salesflow.api.auth import Authenticator
from salesflow.api.http_errors import Forbidden, InvalidToken, Unavailable
from salesflow.api.jwks import JwksCache
from salesflow.api.jwt_auth import JwtVerifier
from salesflow.api.jwt_settings import JwtSettings
from salesflow.api.principal import Principal
from salesflow.settings import Settings
from tests.idp import AUDIENCE, IdP, SigningKey, serve_idp

RSA, EC = SigningKey.rsa(), SigningKey.ec()  # generated once: RSA takes a moment


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def idp() -> Iterator[IdP]:
    with serve_idp(RSA, EC) as made:
        yield made


@pytest.fixture
def clock() -> Clock:
    return Clock()


def verifier(idp: IdP, clock: Clock, **options: Any) -> JwtVerifier:
    settings = JwtSettings(issuer=idp.issuer, audience=[AUDIENCE], **options)
    return JwtVerifier(settings, JwksCache(settings, clock=clock))


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def refused(check: JwtVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        await check.verify(token)
    assert caught.value.status == 401 and caught.value.challenge == 'Bearer error="invalid_token"'
    return caught.value.detail


async def test_rsa_and_ec_tokens_name_their_caller(idp: IdP, clock: Clock) -> None:
    check = verifier(idp, clock)
    found = await check.verify(idp.token(RSA, sub="alice"))
    assert found == Principal("alice", idp.issuer, frozenset({"acme"}), frozenset({"events:read", "events:replay"}))
    assert (await check.verify(idp.token(EC, tenant_id=["acme", "globex"]))).tenants == frozenset({"acme", "globex"})
    assert idp.hits == 1  # the keys were fetched once, through discovery, and cached


@pytest.mark.parametrize(
    ("claims", "says"),
    [
        # Times relative to when the test runs, not to when it was collected (minutes earlier in CI).
        ({"exp": lambda now: now - 60}, "expired"),
        ({"nbf": lambda now: now + 60}, "not valid yet"),
        ({"iss": "http://evil.example/realms/test"}, "another issuer"),
        ({"aud": "some-other-api"}, "another audience"),
        ({"exp": None}, "lacks a required claim"),
        ({"sub": None}, "lacks a required claim"),
    ],
    ids=["expired", "not yet valid", "wrong issuer", "wrong audience", "no exp", "no sub"],
)
async def test_a_token_outside_its_time_issuer_or_audience_is_a_401(
    idp: IdP, clock: Clock, claims: dict[str, Any], says: str
) -> None:
    now = int(time.time())
    claims = {name: value(now) if callable(value) else value for name, value in claims.items()}
    assert says in await refused(verifier(idp, clock, leeway_seconds=10), idp.token(**claims))


async def test_the_leeway_forgives_a_little_clock_skew_only(idp: IdP, clock: Clock) -> None:
    check = verifier(idp, clock, leeway_seconds=30)
    assert await check.verify(idp.token(exp=int(time.time()) - 10, nbf=int(time.time()) + 10))
    assert "expired" in await refused(check, idp.token(exp=int(time.time()) - 40))


async def test_alg_none_and_hs256_signed_with_the_public_key_are_refused(idp: IdP, clock: Clock) -> None:
    check = verifier(idp, clock)
    payload = b64(idp.claims())
    unsigned = f"{b64({'alg': 'none', 'kid': RSA.kid})}.{payload}."
    assert "not accepted" in await refused(check, unsigned)
    # The algorithm-confusion forgery: HMAC keyed with the public key the JWKS publishes.
    public_pem = RSA.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import hashlib
    import hmac

    header = b64({"alg": "HS256", "kid": RSA.kid, "typ": "JWT"})
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert "not accepted" in await refused(check, f"{header}.{payload}.{b64(signature)}")


async def test_a_forged_signature_or_a_key_of_another_type_is_refused(idp: IdP, clock: Clock) -> None:
    check = verifier(idp, clock)
    impostor = SigningKey.ec()
    assert "does not verify" in await refused(check, idp.token(impostor, kid=EC.kid))  # our kid, their key
    header, _, signature = idp.token().split(".")
    tampered = f"{header}.{b64(idp.claims(tenant_id='globex'))}.{signature}"
    assert "does not verify" in await refused(check, tampered)
    # An ES256 header naming the RSA key: the key decides the algorithm, and they disagree.
    header = b64({"alg": "ES256", "kid": RSA.kid})
    assert await refused(check, f"{header}.{b64(idp.claims())}.{b64(b'x' * 64)}")
    assert "not a JWT" in await refused(check, "a.b.c")


async def test_an_unknown_kid_refetches_at_a_bounded_rate_and_finds_the_rotated_key(idp: IdP, clock: Clock) -> None:
    check = verifier(idp, clock, jwks_min_refetch_seconds=30)
    await check.verify(idp.token(RSA))
    assert idp.hits == 1
    rotated = SigningKey.rsa()
    token = idp.token(rotated)
    assert "not one the issuer publishes" in await refused(check, token)  # unknown everywhere
    assert idp.hits == 1  # within 30 s of the last fetch: not fetched again
    idp.rotate(rotated, EC)
    for _ in range(5):
        await refused(check, idp.token(SigningKey.ec()))  # made-up kids: still no fetch
    assert idp.hits == 1
    clock.now += 31
    assert (await check.verify(token)).subject == "user-1"  # the same kid, after rotation
    assert idp.hits == 2
    await refused(check, idp.token(RSA))  # the retired key is gone with the fetch


async def test_an_outage_of_the_jwks_endpoint_keeps_the_cached_keys(idp: IdP, clock: Clock) -> None:
    check = verifier(idp, clock, jwks_cache_seconds=60, jwks_min_refetch_seconds=5)
    await check.verify(idp.token(RSA))
    idp.down = True
    clock.now += 3600  # the cache is long expired, and every fetch now fails
    assert (await check.verify(idp.token(RSA))).tenants == frozenset({"acme"})
    assert (await check.verify(idp.token(EC))).tenants == frozenset({"acme"})
    idp.down = False
    clock.now += 6
    await check.verify(idp.token(RSA))
    assert idp.hits == 2  # back up: fetched again


async def test_with_no_keys_ever_fetched_an_outage_is_a_503_not_a_401(idp: IdP, clock: Clock) -> None:
    idp.down = True
    authenticator = Authenticator(ApiSettings(auth=["jwt"]), verifier(idp, clock))
    with pytest.raises(Unavailable):
        await authenticator.authenticate(idp.token())


async def test_discovery_naming_another_issuer_is_not_trusted(idp: IdP, clock: Clock) -> None:
    idp.discovery_issuer = "http://evil.example"
    with pytest.raises(Unavailable):
        await Authenticator(ApiSettings(auth=["jwt"]), verifier(idp, clock)).authenticate(idp.token())


@pytest.mark.parametrize("tenant", [None, 42, {"id": "acme"}, [], ["acme", 7], "", "acme\x00"], ids=repr)
async def test_a_tenant_claim_absent_or_not_a_string_is_a_403(idp: IdP, clock: Clock, tenant: Any) -> None:
    with pytest.raises(Forbidden):
        await verifier(idp, clock).verify(idp.token(tenant_id=tenant))


async def test_scopes_from_scope_scp_and_a_role_claim(idp: IdP, clock: Clock) -> None:
    check = verifier(idp, clock, role_claim="realm_access.roles", tenant_claim="org.tenants")
    found = await check.verify(
        idp.token(
            scope=None, scp=["events:read"], realm_access={"roles": ["events:replay", "x"]}, org={"tenants": ["a"]}
        )
    )
    assert found.scopes == frozenset({"events:read", "events:replay"}) and found.tenants == frozenset({"a"})
    admin = await check.verify(idp.token(scope="admin", org=None))
    assert admin.tenants is None and admin.allows("events:replay")  # an admin needs no tenant: it has them all


def client(idp: IdP, clock: Clock) -> httpx.AsyncClient:
    settings = ApiSettings(auth=["jwt", "static"], tokens={"acme": "acme-static-token-0123"})
    app = create_app(Settings(), settings, authenticator=Authenticator(settings, verifier(idp, clock)))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def test_over_http_a_bad_token_is_a_401_and_a_missing_scope_a_403(idp: IdP, clock: Clock) -> None:
    async with client(idp, clock) as http:

        async def post(path: str, token: str | None) -> httpx.Response:
            return await http.post(path, headers={"Authorization": f"Bearer {token}"} if token else {})

        expired = await post("/api/events/replay/batch", idp.token(exp=int(time.time()) - 3600))
        assert expired.status_code == 401
        assert expired.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert (await post("/api/events/replay/batch", None)).headers["www-authenticate"] == "Bearer"
        reader = idp.token(scope="events:read")
        denied = await post("/api/events/replay/batch", reader)
        assert denied.status_code == 403 and "events:replay" in denied.json()["detail"]
        assert denied.headers["www-authenticate"] == 'Bearer error="insufficient_scope", scope="events:replay"'
        audit = await http.get("/api/audit", headers={"Authorization": f"Bearer {idp.token()}"})
        assert audit.status_code == 403  # read and replay, but not admin
        static_on_audit = await http.get("/api/audit", headers={"Authorization": "Bearer acme-static-token-0123"})
        assert static_on_audit.status_code == 403  # static tokens still work, as tenant tokens
