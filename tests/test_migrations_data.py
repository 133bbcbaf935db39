"""Migrations with data present: step down one revision at a time and back up to head.

Runs on both databases of the suite (SQLite and PostgreSQL, see .ci/test-suites). At every
step the tables that exist at that revision keep exactly their rows; after the round trip
the service reads the same people and the same keys still open it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, select, Table, MetaData

from app.migrations import alembic_config, downgrade, sync_url, upgrade
from app.runner import RoundRunner
from tests.api.people_payloads import batch_item
from tests.conftest import make_key

ROUND_DATE = "2026-11-18"


def revisions_newest_first(database_url: str) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config(database_url))
    return [rev.revision for rev in script.walk_revisions()]


def table_rows(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            names = [n for n in inspect(connection).get_table_names() if n != "alembic_version"]
            metadata = MetaData()
            rows = {}
            for name in names:
                table = Table(name, metadata, autoload_with=connection)
                order = list(table.primary_key.columns) or list(table.columns)
                rows[name] = [tuple(r) for r in connection.execute(select(table).order_by(*order))]
            return rows
    finally:
        engine.dispose()


async def seed(app: Any, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    people = [batch_item("boss", level=12)]
    people += [batch_item(f"mentor-{i}", level=9, manager_external_id="boss") for i in range(3)]
    people += [batch_item(f"mentee-{i}", level=5, department="Sales", display_name=f"Mentée {i} 山田") for i in range(5)]
    assert (await client.post("/v1/people/batch", json={"people": people}, headers=admin)).json()["errors"] == 0
    assert (await client.delete("/v1/people/mentee-4", headers=admin)).status_code == 204  # an erased tombstone
    program = (await client.post("/v1/programs", json={"name": "Migrations"}, headers=admin)).json()
    enrolments = [{"external_id": f"mentor-{i}", "role": "mentor"} for i in range(3)]
    enrolments += [{"external_id": f"mentee-{i}", "role": "mentee", "blocked": ["mentor-0"] if i == 0 else []} for i in range(4)]
    url = f"/v1/programs/{program['id']}"
    assert (await client.post(f"{url}/enrollments/batch", json={"enrollments": enrolments}, headers=admin)).status_code == 200
    round_id = (await client.post(f"{url}/rounds", json={"round_date": ROUND_DATE}, headers=admin)).json()["id"]
    settings = app.state.settings.model_copy(update={"runner_executor": "thread"})
    result = await RoundRunner(app.state.sessionmaker, settings, owner="migrations").run_once()
    assert result is not None and result.outcome == "completed"
    assert (await client.post(f"/v1/rounds/{round_id}/publish", headers=admin)).status_code == 200


@pytest.fixture
def settings(settings: Any) -> Any:
    return settings.model_copy(update={"runner": "off"})


async def test_step_down_and_up_keeps_every_remaining_row(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], database_url: str
) -> None:
    await seed(app, client, admin)
    integration = await make_key(client, "integration")
    people_before = (await client.get("/v1/people?limit=200", headers=admin)).json()
    pairings_before = (await client.get("/v1/people/mentee-1/pairings", headers=integration)).json()
    await app.state.engine.dispose()  # no pooled connection may hold a lock while tables go

    revisions = revisions_newest_first(database_url)
    assert len(revisions) >= 2, "nothing to round-trip"
    at_head = table_rows(database_url)
    assert all(at_head[name] for name in ("people", "api_keys", "programs", "enrollments", "rounds")), {
        name: len(rows) for name, rows in at_head.items()
    }
    try:
        for below in revisions[1:]:
            before = table_rows(database_url)
            downgrade(database_url, below)
            after = table_rows(database_url)
            assert set(after) <= set(before)
            for name in after:
                assert after[name] == before[name], f"downgrade to {below} changed rows of {name}"
        for target in reversed(revisions[:-1]):
            before = table_rows(database_url)
            upgrade(database_url, target)
            after = table_rows(database_url)
            for name in before:
                assert after[name] == before[name], f"upgrade to {target} changed rows of {name}"
    finally:
        upgrade(database_url, "head")

    # Tables below the lowest revision survived; the service reads them as before.
    assert (await client.get("/v1/people?limit=200", headers=admin)).json() == people_before
    assert (await client.get("/v1/people/mentee-1/pairings", headers=integration)).status_code == 200
    assert pairings_before["items"], "the seeded round should have paired mentee-1"
