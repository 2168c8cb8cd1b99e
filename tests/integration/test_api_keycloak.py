"""The whole flow against a real Keycloak (opt-in: ``pytest -m idp``; the default run deselects it).

Keycloak's server distribution comes from Maven Central (``org.keycloak:keycloak-quarkus-dist``), the
realm from deploy/keycloak/salesflow-realm.json, imported through the admin API. Tokens are the
realm's own (client credentials of its service-account clients): the API verifies them through
discovery and the JWKS, replays for the tenant the token names, records who did it, and follows a key
rotation. Needs a JDK 17+ (Keycloak 26.4 runs on 17) and Maven, or ``SALESFLOW_KEYCLOAK_HOME``
pointing at an unpacked distribution.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import jwt as pyjwt
import pytest

from salesflow.api import ApiSettings, create_app
from salesflow.api.jwt_settings import JwtSettings
from salesflow.kafka_admin import create_topics
from tests.conftest import SettingsFactory
from tests.harness import ROOT
from tests.integration.api_kit import replay_copies, running_relay
from tests.integration.test_api import seed
from tests.integration.test_api_schemathesis import free_port

pytestmark = [pytest.mark.integration, pytest.mark.idp]

VERSION = "26.4.0"
CACHE = Path.home() / ".cache" / "salesflow" / f"keycloak-{VERSION}"
REALM = ROOT / "deploy" / "keycloak" / "salesflow-realm.json"
SECRETS = {
    "salesflow-acme-reader": "acme-reader-secret-change-me",
    "salesflow-acme-replayer": "acme-replayer-secret-change-me",
    "salesflow-admin": "admin-secret-change-me",
}


def keycloak_home() -> Path:
    """An unpacked distribution: ``SALESFLOW_KEYCLOAK_HOME``, or the cached one, fetched through Maven."""
    if os.environ.get("SALESFLOW_KEYCLOAK_HOME"):
        return Path(os.environ["SALESFLOW_KEYCLOAK_HOME"])
    home = CACHE / f"keycloak-{VERSION}"
    if not (home / "bin" / "kc.sh").exists():
        if shutil.which("mvn") is None:
            pytest.skip("Keycloak needs Maven to fetch it, or SALESFLOW_KEYCLOAK_HOME")
        artifact = f"org.keycloak:keycloak-quarkus-dist:{VERSION}:zip"
        subprocess.run(
            ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={CACHE}"],
            check=True,
            timeout=900,
        )
        with zipfile.ZipFile(CACHE / f"keycloak-quarkus-dist-{VERSION}.zip") as archive:
            archive.extractall(CACHE)
        (home / "bin" / "kc.sh").chmod(0o755)
    return home


@pytest.fixture(scope="module")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Keycloak in dev mode on a free port with the salesflow realm; its base URL."""
    port, log = free_port(), tmp_path_factory.mktemp("keycloak") / "keycloak.log"
    env = {**os.environ, "KC_BOOTSTRAP_ADMIN_USERNAME": "admin", "KC_BOOTSTRAP_ADMIN_PASSWORD": "admin"}
    # An in-memory database: every run starts from an empty Keycloak, and runs never share a file lock.
    command = [str(keycloak_home() / "bin" / "kc.sh"), "start-dev", "--db=dev-mem", f"--http-port={port}"]
    with open(log, "ab") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=out, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base, server, log)
        admin = _admin_token(base)
        imported = httpx.post(f"{base}/admin/realms", json=json.loads(REALM.read_text()), headers=admin, timeout=60)
        assert imported.status_code == 201, imported.text
        yield base
    finally:
        server.terminate()
        server.wait(timeout=60)


def _wait_for(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 240  # the first start builds Keycloak's configuration
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()[-4000:]
        try:
            if httpx.get(f"{base}/realms/master", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"Keycloak did not answer within 240 s:\n{log.read_text()[-4000:]}")


def _admin_token(base: str) -> dict[str, str]:
    form = {"grant_type": "password", "client_id": "admin-cli", "username": "admin", "password": "admin"}
    answer = httpx.post(f"{base}/realms/master/protocol/openid-connect/token", data=form, timeout=30)
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def token(base: str, client_id: str) -> dict[str, str]:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": SECRETS[client_id]}
    answer = httpx.post(f"{base}/realms/salesflow/protocol/openid-connect/token", data=form, timeout=30)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def kid(headers: dict[str, str]) -> str:
    return str(pyjwt.get_unverified_header(headers["Authorization"].removeprefix("Bearer "))["kid"])


@pytest.fixture(scope="module")
async def api(
    keycloak: str, settings_factory: SettingsFactory, database_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Any, list[dict[str, Any]]]]:
    from salesflow.db.engine import create_engine

    settings = settings_factory()
    await create_topics(settings)
    engine = create_engine(database_url)
    rows = await seed(settings, engine, ("acme", f"other-{uuid4().hex[:6]}"))  # the realm's clients name acme
    jwt = JwtSettings(issuer=f"{keycloak}/realms/salesflow", audience="salesflow-api", jwks_min_refetch_seconds=0)
    app = create_app(settings, ApiSettings(auth=["jwt"], jwt=jwt), engine=engine)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
    async with app.router.lifespan_context(app), http, running_relay(settings):
        yield http, settings, rows
    await engine.dispose()


async def test_keycloak_tokens_read_replay_and_leave_an_audit_row(
    keycloak: str, api: tuple[httpx.AsyncClient, Any, list[dict[str, Any]]]
) -> None:
    http, settings, rows = api
    reader, replayer = token(keycloak, "salesflow-acme-reader"), token(keycloak, "salesflow-acme-replayer")
    listed = (await http.get("/api/events", headers=reader, params={"limit": 500})).json()["items"]
    assert listed and {e["tenant_id"] for e in listed} == {"acme"}
    assert (await http.post("/api/events/replay/batch", headers=reader)).status_code == 403
    replayed = await http.post("/api/events/replay/batch", headers=replayer, params={"limit": 1})
    assert replayed.status_code == 202, replayed.text
    (result,) = replayed.json()["results"]
    original = next(r for r in rows if str(r["id"]) == result["event_id"])
    assert original["tenant_id"] == "acme"
    position = (original["source_topic"], original["source_partition"], original["source_offset"])
    assert len(await replay_copies(settings, position)) == 1
    audit = (await http.get("/api/audit", headers=token(keycloak, "salesflow-admin"))).json()["items"]
    row = next(a for a in audit if a["id"] == replayed.json()["audit_id"])
    assert row["issuer"] == f"{keycloak}/realms/salesflow" and row["tenants"] == ["acme"]
    assert (await http.get("/api/audit", headers=replayer)).status_code == 403


async def test_a_rotated_realm_key_is_picked_up(
    keycloak: str, api: tuple[httpx.AsyncClient, Any, list[dict[str, Any]]]
) -> None:
    http, _, _ = api
    before = token(keycloak, "salesflow-acme-reader")
    assert (await http.get("/api/events", headers=before)).status_code == 200
    admin = _admin_token(keycloak)
    async with httpx.AsyncClient(base_url=f"{keycloak}/admin/realms/salesflow", headers=admin, timeout=30) as kc:
        realm = (await kc.get("")).json()
        key = {
            "name": "rotated-rsa",
            "providerId": "rsa-generated",
            "providerType": "org.keycloak.keys.KeyProvider",
            "parentId": realm["id"],
            "config": {"priority": ["1000"], "algorithm": ["RS256"]},
        }
        assert (await kc.post("/components", json=key)).status_code == 201
    fresh = token(keycloak, "salesflow-acme-reader")  # signed by the new, higher-priority key
    assert kid(fresh) != kid(before)
    answer = await http.get("/api/events", headers=fresh)
    assert answer.status_code == 200, answer.text
