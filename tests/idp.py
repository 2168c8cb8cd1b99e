"""A stand-in identity provider for the auth tests: a real HTTP server on 127.0.0.1 serving a JWKS and
an OIDC discovery document, with keys generated per test (RSA and EC), and tokens signed by them.

``IdP.down`` makes both endpoints answer 503; ``hits`` counts JWKS fetches; ``rotate`` replaces the
published keys.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "salesflow-api"
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: PrivateKey

    @classmethod
    def rsa(cls) -> SigningKey:
        return cls(
            f"rsa-{uuid.uuid4().hex[:8]}", "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )

    @classmethod
    def ec(cls) -> SigningKey:
        return cls(f"ec-{uuid.uuid4().hex[:8]}", "ES256", ec.generate_private_key(ec.SECP256R1()))

    def public_jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        as_json = RSAAlgorithm.to_jwk(public) if self.alg == "RS256" else ECAlgorithm.to_jwk(public)  # type: ignore[arg-type]
        return {**json.loads(as_json), "kid": self.kid, "alg": self.alg, "use": "sig"}


@dataclass
class IdP:
    url: str
    keys: list[SigningKey] = field(default_factory=list)
    down: bool = False
    hits: int = 0
    discovery_issuer: str | None = None  # what discovery claims as its issuer (default: the real one)

    @property
    def issuer(self) -> str:
        return self.url + "/realms/test"

    @property
    def jwks_url(self) -> str:
        return self.url + "/jwks"

    def rotate(self, *keys: SigningKey) -> None:
        self.keys = list(keys)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "user-1",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "tenant_id": "acme",
            "scope": "openid events:read events:replay",
        }
        return {k: v for k, v in {**base, **overrides}.items() if v is not None}

    def token(self, key: SigningKey | None = None, *, kid: str | None = None, **claims: Any) -> str:
        key = key or self.keys[0]
        return jwt.encode(self.claims(**claims), key.private, algorithm=key.alg, headers={"kid": kid or key.kid})

    def document(self, path: str) -> dict[str, Any] | None:
        if path == "/jwks":
            self.hits += 1
            return {"keys": [k.public_jwk() for k in self.keys]}
        if path == "/realms/test/.well-known/openid-configuration":
            return {"issuer": self.discovery_issuer or self.issuer, "jwks_uri": self.jwks_url}
        return None


@contextmanager
def serve_idp(*keys: SigningKey) -> Iterator[IdP]:
    """An IdP on a free port, for the ``with`` block."""
    idp = IdP("", list(keys))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if idp.down:
                self.send_error(503)
                return
            found = idp.document(self.path)
            if found is None:
                self.send_error(404)
                return
            body = json.dumps(found).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    idp.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield idp
    finally:
        server.shutdown()
        server.server_close()
