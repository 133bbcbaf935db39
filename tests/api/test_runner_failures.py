"""A round whose load or store step raises fails at once with the real cause, not after
``runner_max_attempts`` lease expiries as "round-abandoned"."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.exc import DBAPIError

import app.runner as runner_module
from app.runner import RoundRunner
from tests.api.rounds_support import setup_program, trigger


class Boom(RuntimeError):
    pass


SECRET = "ines@example.com"  # an exception message may quote personal data: it must not reach the API


async def _round_after_one_run(client: httpx.AsyncClient, admin, hris, runner: RoundRunner) -> dict:  # type: ignore[no-untyped-def]
    program_id = await setup_program(client, admin, hris)
    round_id = (await trigger(client, admin, program_id)).json()["id"]
    result = await runner.run_once()
    assert result is not None and result.outcome == "failed" and result.round_id == round_id
    assert await runner.claim() is None  # nothing left to retry
    return (await client.get(f"/v1/rounds/{round_id}", headers=admin)).json()


async def test_load_error_fails_the_round_with_a_problem(
    client: httpx.AsyncClient, admin, hris, runner: RoundRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_load(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise Boom(f"cannot build profile of {SECRET}")

    monkeypatch.setattr(runner_module, "_load", broken_load)
    body = await _round_after_one_run(client, admin, hris, runner)
    assert body["status"] == "failed" and body["attempts"] == 1
    error = body["error"]
    assert error["type"].endswith("/round-load-error") and error["status"] == 500 and error["title"]
    assert "Boom" in error["detail"] and SECRET not in error["detail"]


async def test_store_error_fails_the_round_with_a_problem(
    client: httpx.AsyncClient, app, admin, hris, runner: RoundRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_store = runner_module.store_results

    async def broken_store(session, *args, **kwargs):  # type: ignore[no-untyped-def]
        await real_store(session, *args, **kwargs)  # writes, then fails: the whole store rolls back
        raise Boom(f"row for {SECRET} rejected")

    monkeypatch.setattr(runner_module, "store_results", broken_store)
    body = await _round_after_one_run(client, admin, hris, runner)
    assert body["status"] == "failed" and body["attempts"] == 1
    error = body["error"]
    assert error["type"].endswith("/round-store-error") and error["status"] == 500 and error["title"]
    assert "Boom" in error["detail"] and SECRET not in error["detail"]
    assert body["stats"] in (None, {})  # nothing of the rolled-back store survived
    matches = await client.get(f"/v1/rounds/{body['id']}/matches", headers=admin)
    assert matches.status_code != 200 or matches.json()["items"] == []


async def test_lost_database_connection_is_retried_through_the_lease(
    client: httpx.AsyncClient, admin, hris, runner: RoundRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def disconnected(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise DBAPIError("SELECT 1", None, ConnectionError("server closed the connection"), connection_invalidated=True)

    monkeypatch.setattr(runner_module, "_load", disconnected)
    program_id = await setup_program(client, admin, hris)
    round_id = (await trigger(client, admin, program_id)).json()["id"]
    with pytest.raises(DBAPIError):
        await runner.run_once()
    body = (await client.get(f"/v1/rounds/{round_id}", headers=admin)).json()
    assert body["status"] == "running" and body["attempts"] == 1 and body["error"] is None
