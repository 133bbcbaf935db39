"""The runner: claims, leases, retries after a dead runner, fencing, failures."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import func, select, update

import matching
from app.db import session_scope
from app.models import Round, RoundMatch, RoundUnmatched
from app.models.base import utcnow
from app.runner import RoundRunner
from tests.api.rounds_support import create_program, enrol, push_org, setup_program, stored_solution_violations, trigger


async def _expire_lease(app, round_id: int) -> None:
    async with session_scope(app.state.sessionmaker) as session:
        await session.execute(
            update(Round).where(Round.id == round_id).values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )


async def _result_rows(app, round_id: int) -> tuple[int, int]:
    async with session_scope(app.state.sessionmaker, write=False) as session:
        matches = (await session.execute(select(func.count()).where(RoundMatch.round_id == round_id))).scalar_one()
        unmatched = (await session.execute(select(func.count()).where(RoundUnmatched.round_id == round_id))).scalar_one()
    return matches, unmatched


async def test_round_of_a_dead_runner_is_retried_and_stored_once(
    client: httpx.AsyncClient, app, admin, hris, settings, runner: RoundRunner
) -> None:
    program_id = await setup_program(client, admin, hris)
    round_id = (await trigger(client, admin, program_id)).json()["id"]

    dead = await runner.claim()  # runner A claims, then "dies" mid-round
    assert dead is not None and dead.round_id == round_id and dead.attempt == 1
    second = RoundRunner(app.state.sessionmaker, settings, owner="test-runner-b")
    assert await second.claim() is None  # the lease is still valid: nothing to take over

    await _expire_lease(app, round_id)
    result = await second.run_once()
    assert result is not None and result.outcome == "completed"

    # Runner A wakes up and finishes its (stale) attempt: the fence drops its results.
    late = await runner.process(dead)
    assert late.outcome == "lease_lost"

    body = (await client.get(f"/v1/rounds/{round_id}", headers=admin)).json()
    assert body["status"] == "completed" and body["attempts"] == 2
    assert await _result_rows(app, round_id) == (3, 2)  # one result set: 3 matches, gen + chen unmatched
    assert await stored_solution_violations(app, round_id) == []


async def test_round_whose_runners_keep_dying_fails_after_max_attempts(
    client: httpx.AsyncClient, app, admin, hris, settings
) -> None:
    program_id = await setup_program(client, admin, hris)
    round_id = (await trigger(client, admin, program_id)).json()["id"]
    for attempt in range(1, settings.runner_max_attempts + 1):
        claim = await RoundRunner(app.state.sessionmaker, settings, owner=f"r{attempt}").claim()
        assert claim is not None and claim.attempt == attempt
        await _expire_lease(app, round_id)
    assert await RoundRunner(app.state.sessionmaker, settings, owner="last").claim() is None
    body = (await client.get(f"/v1/rounds/{round_id}", headers=admin)).json()
    assert body["status"] == "failed"
    assert body["error"]["type"].endswith("/round-abandoned")
    assert body["error"]["status"] == 500 and body["error"]["title"] and body["error"]["detail"]
    assert await _result_rows(app, round_id) == (0, 0)
    # The program is free for a new round.
    assert (await trigger(client, admin, program_id)).status_code == 202


async def test_lease_is_renewed_while_solving(client: httpx.AsyncClient, app, admin, hris, settings, monkeypatch) -> None:
    program_id = await setup_program(client, admin, hris)
    round_id = (await trigger(client, admin, program_id)).json()["id"]
    fast = settings.model_copy(update={"runner_lease_seconds": 1.0})
    runner = RoundRunner(app.state.sessionmaker, fast, owner="slow-solver")
    real_solve = matching.solve

    def slow_solve(problem):  # type: ignore[no-untyped-def]
        import time

        time.sleep(2.5)  # longer than the lease: only renewals keep the round ours
        return real_solve(problem)

    monkeypatch.setattr(matching, "solve", slow_solve)
    other = RoundRunner(app.state.sessionmaker, fast, owner="other")
    task = asyncio.create_task(runner.run_once())
    for _ in range(25):
        await asyncio.sleep(0.1)
        assert await other.claim() is None
    result = await task
    assert result is not None and result.outcome == "completed"
    assert (await client.get(f"/v1/rounds/{round_id}", headers=admin)).json()["attempts"] == 1


async def test_discarding_a_running_round_drops_its_results(client: httpx.AsyncClient, app, admin, hris, runner) -> None:
    program_id = await setup_program(client, admin, hris)
    round_id = (await trigger(client, admin, program_id)).json()["id"]
    claim = await runner.claim()
    assert (await client.post(f"/v1/rounds/{round_id}/discard", headers=admin)).status_code == 200
    assert (await runner.process(claim)).outcome == "lease_lost"  # type: ignore[arg-type]
    body = (await client.get(f"/v1/rounds/{round_id}", headers=admin)).json()
    assert body["status"] == "discarded" and body["discarded_at"]
    assert await _result_rows(app, round_id) == (0, 0)


async def test_cancelled_runner_hands_the_round_back(client: httpx.AsyncClient, app, admin, hris, settings, monkeypatch) -> None:
    program_id = await setup_program(client, admin, hris)
    round_id = (await trigger(client, admin, program_id)).json()["id"]
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    def blocked_solve(problem):  # type: ignore[no-untyped-def]
        loop.call_soon_threadsafe(started.set)
        import time

        time.sleep(0.5)
        raise RuntimeError("never stored")

    monkeypatch.setattr(matching, "solve", blocked_solve)
    runner = RoundRunner(app.state.sessionmaker, settings, owner="shutting-down")
    runner.start()
    runner.wake()
    await asyncio.wait_for(started.wait(), 5)
    await runner.stop()
    body = (await client.get(f"/v1/rounds/{round_id}", headers=admin)).json()
    assert body["status"] == "queued" and body["attempts"] == 0


async def test_round_that_cannot_be_solved_fails_with_a_problem(client: httpx.AsyncClient, app, admin, hris, runner) -> None:
    program_id = await setup_program(client, admin, hris)
    round_id = (await trigger(client, admin, program_id, {"pins": [{"mentor": "ines", "mentee": "fumi"}]})).json()["id"]
    # After the trigger, the pinned mentee is promoted past the level gap: the pin now breaks a rule.
    assert (await client.patch("/v1/people/fumi", json={"level": 9}, headers=hris)).status_code == 200
    result = await runner.run_once()
    assert result is not None and result.outcome == "failed"
    body = (await client.get(f"/v1/rounds/{round_id}", headers=admin)).json()
    assert body["status"] == "failed"
    error = body["error"]
    assert set(error) >= {"type", "title", "status", "detail"}
    assert error["type"].endswith("/invalid-round") and error["status"] == 422
    assert "fumi" in error["detail"]
    assert await _result_rows(app, round_id) == (0, 0)


async def test_solver_in_a_separate_process(client: httpx.AsyncClient, app, admin, hris, settings) -> None:
    """The production default: the problem is pickled to a spawned process and back."""
    program_id = await setup_program(client, admin, hris)
    round_id = (await trigger(client, admin, program_id)).json()["id"]
    runner = RoundRunner(app.state.sessionmaker, settings.model_copy(update={"runner_executor": "process"}))
    try:
        result = await runner.run_once()
    finally:
        runner.close()
    assert result is not None and result.outcome == "completed"
    assert await _result_rows(app, round_id) == (3, 2)


async def test_every_hard_rule_holds_in_a_synthetic_organisation(
    client: httpx.AsyncClient, app, admin, hris, runner
) -> None:
    """A few hundred people from the engine's generator, through the API: the stored matches
    pass matching.check against the Problem rebuilt from the database."""
    people, enrollments = matching.synthetic_organisation(160, 80, seed=7, n_both=20)
    payloads = [_api_person(p) for p in people.values()]
    await push_org(client, hris, payloads)
    program_id = await create_program(client, admin, rules={"min_overlap_hours": 1.5})
    await enrol(client, admin, program_id, [
        {"external_id": e.person_id, "role": e.role, **({"capacity": e.capacity} if e.role != "mentee" else {})}
        for e in enrollments
    ])  # fmt: skip
    round_id = (await trigger(client, admin, program_id)).json()["id"]
    assert (await runner.run_once()).outcome == "completed"  # type: ignore[union-attr]
    body = (await client.get(f"/v1/rounds/{round_id}", headers=admin)).json()
    assert body["stats"]["matched_mentees"] > 50, body["stats"]
    assert await stored_solution_violations(app, round_id) == []


def _api_person(person) -> dict:  # type: ignore[no-untyped-def]
    return matching.person_to_api_payload(person)
