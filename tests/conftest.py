"""Fixtures shared by the service tests.

The database is a temporary SQLite file, or the PostgreSQL database named by
``KIZUNA_TEST_DATABASE_URL``. It is migrated once per session with Alembic (the same path
production uses) and emptied before each test that asks for the app.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, inspect, text

from app.main import create_app
from app.migrations import downgrade, sync_url, upgrade
from app.models import metadata
from app.settings import Settings, normalise_database_url

ADMIN_SECRET = "kz_test-admin-secret-0123456789abcdef"


def _test_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("KIZUNA_TEST_DATABASE_URL")
    if url:
        return normalise_database_url(url)
    path = tmp_path_factory.mktemp("db") / "kizuna-test.db"
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = _test_database_url(tmp_path_factory)
    engine = create_engine(sync_url(url))
    with engine.connect() as connection:
        has_tables = bool(inspect(connection).get_table_names())
    engine.dispose()
    if has_tables:  # left over from an interrupted run: start from nothing
        downgrade(url, "base")
    upgrade(url, "head")
    return url


def wipe(database_url: str) -> None:
    engine = create_engine(sync_url(database_url))
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(text(f'DELETE FROM "{table.name}"'))
    engine.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    wipe(database_url)
    return Settings(database_url=database_url, bootstrap_admin_key=ADMIN_SECRET)


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with its lifespan entered (engine, bootstrap key, runner if configured)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@asynccontextmanager
async def http_client(application: object) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client speaking to the app in process."""
    transport = httpx.ASGITransport(app=application)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://kizuna.test") as http:
        yield http


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with started(settings) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(app) as http:
        yield http


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def admin() -> dict[str, str]:
    return bearer(ADMIN_SECRET)


async def make_key(client: httpx.AsyncClient, role: str, name: str | None = None) -> dict[str, str]:
    response = await client.post(
        "/v1/api-keys", json={"name": name or f"{role} key", "role": role}, headers=bearer(ADMIN_SECRET)
    )
    assert response.status_code == 201, response.text
    return bearer(response.json()["secret"])


@pytest.fixture
async def hris(client: httpx.AsyncClient) -> dict[str, str]:
    return await make_key(client, "hris")


@pytest.fixture
async def integration(client: httpx.AsyncClient) -> dict[str, str]:
    return await make_key(client, "integration")
