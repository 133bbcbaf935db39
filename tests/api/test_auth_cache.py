"""The per-process principal cache (KIZUNA_AUTH_CACHE_SECONDS): a key that authenticated is
not looked up again for a few seconds; a revocation by this process is refused at once; one
made elsewhere is seen after at most the cache's lifetime; nothing outlives a key's expiry."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, event, text, update

from app import db as app_db
from app.auth import Principal, PrincipalCache, hash_secret
from app.migrations import sync_url
from app.models import ApiKey
from app.models.base import utcnow
from app.settings import Settings
from tests.api.people_payloads import person_payload
from tests.conftest import bearer, http_client, make_key, started


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def key_lookups(app: Any) -> Iterator[list[str]]:
    """The statements that read the api_keys table while the block runs."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _executemany):  # type: ignore[no-untyped-def]
        if "FROM api_keys" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def revoke_elsewhere(database_url: str, secret: str) -> None:
    """What `kizuna keys revoke` or another worker does: a commit this process never sees."""
    engine = create_engine(sync_url(database_url))
    with engine.begin() as connection:
        connection.execute(update(ApiKey).where(ApiKey.secret_hash == hash_secret(secret)).values(revoked_at=utcnow()))
    engine.dispose()


async def test_a_key_is_looked_up_once_while_cached(app: Any, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    key = await make_key(client, "hris")
    with key_lookups(app) as lookups:
        for _ in range(3):
            assert (await client.get("/v1/people", headers=key)).status_code == 200
    assert len(lookups) == 1


async def test_unknown_keys_are_looked_up_every_time(app: Any, client: httpx.AsyncClient) -> None:
    with key_lookups(app) as lookups:
        for _ in range(3):
            assert (await client.get("/v1/people", headers=bearer("kz_" + "y" * 43))).status_code == 401
    assert len(lookups) == 3


async def test_the_cache_can_be_turned_off(settings: Settings) -> None:
    async with started(settings.model_copy(update={"auth_cache_seconds": 0})) as application:
        async with http_client(application) as client:
            key = await make_key(client, "hris")
            with key_lookups(application) as lookups:
                for _ in range(3):
                    assert (await client.get("/v1/people", headers=key)).status_code == 200
    assert len(lookups) == 3


async def test_a_key_revoked_through_this_process_is_refused_at_once(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = (await client.post("/v1/api-keys", json={"name": "portal", "role": "integration"}, headers=admin)).json()
    key = bearer(created["secret"])
    await client.put("/v1/people/kim", json=person_payload("kim"), headers=admin)
    with key_lookups(app) as lookups:
        for _ in range(2):
            assert (await client.get("/v1/people/kim/pairings", headers=key)).status_code == 200
    assert len(lookups) == 1  # the second answer came from the cache
    assert (await client.delete(f"/v1/api-keys/{created['id']}", headers=admin)).status_code == 204
    response = await client.get("/v1/people/kim/pairings", headers=key)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


async def test_a_revocation_elsewhere_is_seen_within_the_cache_lifetime(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], database_url: str
) -> None:
    clock = FakeClock()
    app.state.principal_cache.clock = clock
    ttl = app.state.settings.auth_cache_seconds
    created = (await client.post("/v1/api-keys", json={"name": "sync", "role": "hris"}, headers=admin)).json()
    key = bearer(created["secret"])
    assert (await client.get("/v1/people", headers=key)).status_code == 200

    revoke_elsewhere(database_url, created["secret"])
    # The documented staleness: until the cached entry is ttl old, this process still says yes.
    clock.now += ttl - 0.001
    assert (await client.get("/v1/people", headers=key)).status_code == 200
    clock.now += 0.001
    assert (await client.get("/v1/people", headers=key)).status_code == 401
    with key_lookups(app) as lookups:  # and the refusal is not cached: each request looks again
        for _ in range(2):
            assert (await client.get("/v1/people", headers=key)).status_code == 401
    assert len(lookups) == 2


async def test_a_participant_token_is_refused_at_once_after_erasure(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], integration: dict[str, str]
) -> None:
    await client.put("/v1/people/ola", json=person_payload("ola"), headers=admin)
    token = bearer((await client.post("/v1/people/ola/tokens", headers=integration)).json()["token"])
    with key_lookups(app) as lookups:
        for _ in range(2):
            assert (await client.get("/v1/me/pairings", headers=token)).status_code == 200
    assert len(lookups) == 1  # cached, so erasure must clear it
    assert (await client.delete("/v1/people/ola", headers=admin)).status_code == 204
    assert (await client.get("/v1/me/pairings", headers=token)).status_code == 401


# -- the cache itself ---------------------------------------------------------------------------

PRINCIPAL = Principal(key_id="k", role="integration")


def test_an_entry_never_outlives_the_key() -> None:
    clock = FakeClock()
    cache = PrincipalCache(ttl_seconds=300, clock=clock)
    cache.put("d", PRINCIPAL, utcnow() + timedelta(seconds=30), cache.generation)
    clock.now += 29
    assert cache.get("d") == PRINCIPAL
    clock.now += 1
    assert cache.get("d") is None
    cache.put("e", PRINCIPAL, utcnow() - timedelta(seconds=1), cache.generation)  # already expired
    assert cache.get("e") is None


def test_a_lookup_that_raced_a_revocation_is_not_stored() -> None:
    cache = PrincipalCache(ttl_seconds=5)
    before = cache.generation  # a lookup reads the row (still active)...
    cache.clear()  # ...a revocation commits...
    cache.put("d", PRINCIPAL, None, before)  # ...and the lookup's answer is dropped
    assert cache.get("d") is None
    cache.put("d", PRINCIPAL, None, cache.generation)
    assert cache.get("d") == PRINCIPAL


def test_the_cache_is_bounded() -> None:
    cache = PrincipalCache(ttl_seconds=5, max_entries=3)
    for digest in "abcd":
        cache.put(digest, PRINCIPAL, None, cache.generation)
    assert cache.get("a") is None and all(cache.get(d) == PRINCIPAL for d in "bcd")


# -- pooled PostgreSQL connections ---------------------------------------------------------------


async def test_a_pooled_connection_killed_while_idle_is_replaced(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if app.state.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL connection pool")
    monkeypatch.setattr(app_db, "IDLE_PING_SECONDS", 0.0)  # every idle connection counts as long idle
    assert (await client.get("/v1/people", headers=admin)).status_code == 200
    engine = create_engine(sync_url(database_url))
    with engine.connect() as connection:  # what a PostgreSQL restart or a firewall does to idle connections
        killed = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    engine.dispose()
    assert killed >= 1
    for _ in range(3):
        assert (await client.get("/v1/people", headers=admin)).status_code == 200
