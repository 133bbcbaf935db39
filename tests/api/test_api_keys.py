"""API keys: creation shows the secret once, revocation takes effect, roles are enforced."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, update

from app.auth import PREFIX_LENGTH
from app.db import session_scope
from app.migrations import sync_url
from app.models import ApiKey
from app.models.base import utcnow
from app.settings import Settings
from tests.api.people_payloads import batch_item, person_payload
from tests.conftest import ADMIN_SECRET, bearer, http_client, make_key, started


async def test_created_secret_is_shown_once_and_stored_only_as_hash(
    client: httpx.AsyncClient, admin: dict[str, str], database_url: str
) -> None:
    response = await client.post("/v1/api-keys", json={"name": "Workday sync", "role": "hris"}, headers=admin)
    assert response.status_code == 201
    created = response.json()
    assert created["secret"].startswith("kz_") and len(created["secret"]) > 40
    assert created["prefix"] == created["secret"][:PREFIX_LENGTH]

    listed = (await client.get("/v1/api-keys", headers=admin)).json()
    assert created["id"] in [k["id"] for k in listed["items"]]
    assert all("secret" not in k for k in listed["items"])

    engine = create_engine(sync_url(database_url))
    with engine.connect() as connection:
        stored = [tuple(row) for row in connection.execute(select(ApiKey.secret_hash, ApiKey.prefix))]
    engine.dispose()
    assert all(created["secret"] not in value for row in stored for value in row)


async def test_revoked_key_is_refused(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    created = (await client.post("/v1/api-keys", json={"name": "tmp", "role": "hris"}, headers=admin)).json()
    key = bearer(created["secret"])
    assert (await client.get("/v1/people", headers=key)).status_code == 200
    assert (await client.delete(f"/v1/api-keys/{created['id']}", headers=admin)).status_code == 204
    response = await client.get("/v1/people", headers=key)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert (await client.delete(f"/v1/api-keys/{created['id']}", headers=admin)).status_code == 404
    revoked = (await client.get("/v1/api-keys?include_revoked=true", headers=admin)).json()["items"]
    assert any(k["id"] == created["id"] and k["revoked_at"] for k in revoked)


async def test_an_admin_key_cannot_revoke_itself(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    keys = (await client.get("/v1/api-keys", headers=admin)).json()["items"]
    bootstrap = next(k for k in keys if k["prefix"] == ADMIN_SECRET[:PREFIX_LENGTH])
    assert (await client.delete(f"/v1/api-keys/{bootstrap['id']}", headers=admin)).status_code == 409


@pytest.mark.parametrize("body", [{"name": "x", "role": "participant"}, {"name": "x", "role": "root"}, {"name": "", "role": "hris"}, {"role": "hris"}, {"name": "x", "role": "hris", "scopes": []}])
async def test_bad_key_requests(client: httpx.AsyncClient, admin: dict[str, str], body: dict[str, object]) -> None:
    before = (await client.get("/v1/api-keys", headers=admin)).json()
    assert (await client.post("/v1/api-keys", json=body, headers=admin)).status_code == 422
    assert (await client.get("/v1/api-keys", headers=admin)).json() == before


async def test_key_listing_pages(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for i in range(5):
        await make_key(client, "integration", f"k{i}")
    seen: list[str] = []
    cursor = None
    while True:
        page = (await client.get("/v1/api-keys?limit=2" + (f"&cursor={cursor}" if cursor else ""), headers=admin)).json()
        seen += [k["id"] for k in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 6  # five new keys and the bootstrap admin


PEOPLE_CALLS = [
    ("PUT", "/v1/people/r1", person_payload("r1")),
    ("POST", "/v1/people/batch", {"people": [batch_item("r2")]}),
    ("GET", "/v1/people", None),
    ("GET", "/v1/people/r1", None),
    ("PATCH", "/v1/people/r1", {"title": "x"}),
    ("DELETE", "/v1/people/r1", None),
]
KEY_CALLS = [
    ("POST", "/v1/api-keys", {"name": "x", "role": "hris"}),
    ("GET", "/v1/api-keys", None),
    ("DELETE", "/v1/api-keys/00000000-0000-0000-0000-000000000000", None),
]


@pytest.mark.parametrize("method,path,body", PEOPLE_CALLS + KEY_CALLS)
async def test_missing_and_unknown_keys_get_401(client: httpx.AsyncClient, method: str, path: str, body: object) -> None:
    for headers in ({}, bearer("kz_not-a-real-key"), {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}):
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("method,path,body", PEOPLE_CALLS)
async def test_people_endpoints_refuse_the_integration_role(
    client: httpx.AsyncClient, integration: dict[str, str], hris: dict[str, str], method: str, path: str, body: object
) -> None:
    await client.put("/v1/people/r1", json=person_payload("r1"), headers=hris)
    response = await client.request(method, path, json=body, headers=integration)
    assert response.status_code == 403
    assert (await client.get("/v1/people/r1", headers=hris)).json()["display_name"] == "Person r1"


@pytest.mark.parametrize("method,path,body", KEY_CALLS)
async def test_key_endpoints_need_admin(
    client: httpx.AsyncClient, hris: dict[str, str], integration: dict[str, str], method: str, path: str, body: object
) -> None:
    for headers in (hris, integration):
        assert (await client.request(method, path, json=body, headers=headers)).status_code == 403



async def test_a_revoked_bootstrap_key_stays_revoked_across_restarts(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], settings: Settings
) -> None:
    other = await make_key(client, "admin", "second admin")
    keys = (await client.get("/v1/api-keys", headers=admin)).json()["items"]
    bootstrap = next(k for k in keys if k["prefix"] == ADMIN_SECRET[:PREFIX_LENGTH])
    assert (await client.delete(f"/v1/api-keys/{bootstrap['id']}", headers=other)).status_code == 204
    async with session_scope(app.state.sessionmaker) as session:  # no active admin key is left
        await session.execute(update(ApiKey).where(ApiKey.role == "admin").values(revoked_at=utcnow()))
    # A restart with the same environment starts fine and does not bring the revoked key back.
    async with started(settings) as restarted:
        async with http_client(restarted) as again:
            assert (await again.get("/v1/api-keys", headers=admin)).status_code == 401
