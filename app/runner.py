"""The round runner: claim a queued round, solve it off the event loop, store it, repeat.

It runs inside the API process by default (``KIZUNA_RUNNER=inprocess``) and as separate
``kizuna worker`` processes (``run_worker``) that share one PostgreSQL. Correctness does not
depend on how many run: claims are atomic, a lease is renewed while a round solves, a round
whose lease expired is claimed again (up to ``runner_max_attempts``), and results are stored
in one transaction fenced on the lease token (see ``app/rounds.py``).

The solver runs in a spawned worker process by default: it is CPU-bound for seconds on large
rounds, and in a thread it would hold the GIL long enough to stall the API's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import socket
import time
import uuid
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import matching
from app.db import create_engine, create_sessionmaker, session_scope
from app.models import Round
from app.problem_builder import BuiltProblem, build_round_problem
from app.rounds import Claim, claim_next_round, problem_details, release_round, renew_lease, store_failure, store_results
from app.settings import Settings

log = logging.getLogger("kizuna.runner")

Outcome = Literal["completed", "failed", "lease_lost", "released"]


@dataclass(slots=True)
class RunResult:
    round_id: int
    outcome: Outcome
    timings: dict[str, float] = field(default_factory=dict)  # load / solve / store seconds (store incl. commit)


def _warm_up() -> bool:
    """Runs in a fresh worker process: pay the import of the engine (numpy, OR-Tools) up front."""
    import matching as _  # noqa: F401

    return True


def _default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RoundRunner:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        owner: str | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.owner = owner or _default_owner()
        self._pool: ProcessPoolExecutor | None = None
        self._wake = asyncio.Event()
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    # -- one cycle ------------------------------------------------------------------------

    async def run_once(self) -> RunResult | None:
        """Claim one round, solve and store it. None when nothing was claimable."""
        claim = await self.claim()
        return await self.process(claim) if claim is not None else None

    async def claim(self) -> Claim | None:
        async with session_scope(self.sessionmaker) as session:
            return await claim_next_round(
                session,
                owner=self.owner,
                lease_seconds=self.settings.runner_lease_seconds,
                max_attempts=self.settings.runner_max_attempts,
            )

    async def process(self, claim: Claim) -> RunResult:
        keeper = asyncio.create_task(self._keep_lease(claim))
        timings: dict[str, float] = {}
        try:
            started = time.perf_counter()
            built = await self._load(claim)
            timings["load_seconds"] = round(time.perf_counter() - started, 4)

            started = time.perf_counter()
            try:
                solution = await self._solve(built)
            except BrokenProcessPool:
                # The worker process died (e.g. out of memory): this attempt is over; retry it
                # through the lease like any crashed runner, up to runner_max_attempts.
                self._discard_pool()
                log.error("solver process died on round %s (attempt %s)", claim.round_id, claim.attempt)
                await self._expire_now(claim)
                return RunResult(claim.round_id, "lease_lost", timings)
            except ValueError as exc:  # the engine's word for a problem it cannot solve as asked
                return await self._fail(claim, problem_details("invalid-round", "Round cannot be solved", 422, str(exc)), timings)
            except Exception as exc:
                log.exception("solver failed on round %s", claim.round_id)
                detail = f"{type(exc).__name__}: {exc}"[:500]
                return await self._fail(claim, problem_details("solver-error", "Solver error", 500, detail), timings)
            timings["solve_seconds"] = round(time.perf_counter() - started, 4)

            started = time.perf_counter()
            stored = await self._store(claim, built, solution, timings)
            timings["store_seconds"] = round(time.perf_counter() - started, 4)
            if not stored:
                log.warning("round %s: lease lost before storing; results dropped", claim.round_id)
                return RunResult(claim.round_id, "lease_lost", timings)
            log.info("round %s completed: %s", claim.round_id, timings)
            return RunResult(claim.round_id, "completed", timings)
        except asyncio.CancelledError:
            # Shutting down: hand the round back instead of waiting for the lease to expire.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._release(claim))
            raise
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    # -- phases -----------------------------------------------------------------------------

    async def _load(self, claim: Claim) -> BuiltProblem:
        async with session_scope(self.sessionmaker, write=False) as session:
            if session.bind.dialect.name == "postgresql":
                # One snapshot for all the reads that make up the problem.
                await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            round_row = await session.get(Round, claim.round_id)
            assert round_row is not None
            return await build_round_problem(session, round_row, self.settings.round_time_limit_seconds)

    async def _solve(self, built: BuiltProblem) -> Any:
        if self.settings.runner_executor == "thread":
            return await asyncio.to_thread(matching.solve, built.problem)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool(), matching.solve, built.problem)

    async def _store(self, claim: Claim, built: BuiltProblem, solution: Any, timings: dict[str, float]) -> bool:
        try:
            async with session_scope(self.sessionmaker) as session:
                if not await store_results(session, claim, built, solution, dict(timings)):
                    raise _LeaseLost
        except _LeaseLost:
            return False
        return True

    async def _fail(self, claim: Claim, error: dict[str, Any], timings: dict[str, float]) -> RunResult:
        async with session_scope(self.sessionmaker) as session:
            stored = await store_failure(session, claim, error)
        return RunResult(claim.round_id, "failed" if stored else "lease_lost", timings)

    async def _release(self, claim: Claim) -> None:
        async with session_scope(self.sessionmaker) as session:
            await release_round(session, claim)

    async def _expire_now(self, claim: Claim) -> None:
        from sqlalchemy import update

        from app.models.base import utcnow

        async with session_scope(self.sessionmaker) as session:
            await session.execute(
                update(Round)
                .where(Round.id == claim.round_id, Round.lease_token == claim.token, Round.status == "running")
                .values(lease_expires_at=utcnow())
            )

    async def _keep_lease(self, claim: Claim) -> None:
        interval = max(self.settings.runner_lease_seconds / 3, 0.2)
        while True:
            await asyncio.sleep(interval)
            try:
                async with session_scope(self.sessionmaker) as session:
                    if not await renew_lease(session, claim, self.settings.runner_lease_seconds):
                        log.warning("round %s: lease lost (re-claimed or discarded)", claim.round_id)
                        return
            except Exception:  # a database blip: try again next tick, the lease has slack
                log.exception("round %s: lease renewal failed", claim.round_id)

    # -- the solver process -----------------------------------------------------------------

    def pool(self) -> Executor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            self._pool.submit(_warm_up)
        return self._pool

    def _discard_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the solver process now; a round it was solving is re-claimed after its lease."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())  # no public API before 3.14
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.terminate()

    # -- the loop -----------------------------------------------------------------------------

    def wake(self) -> None:
        """A round was queued: look now rather than at the next poll."""
        self._wake.set()

    async def run_forever(self, stop: asyncio.Event) -> None:
        log.info("round runner %s started", self.owner)
        while not stop.is_set():
            try:
                result = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("round runner cycle failed")
                result = None
            if result is None:
                await self._idle(stop)
        log.info("round runner %s stopped", self.owner)

    async def _idle(self, stop: asyncio.Event) -> None:
        self._wake.clear()
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=self.settings.runner_poll_seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def start(self) -> None:
        """Run in the background of the current event loop (the API process)."""
        if self.settings.runner_executor == "process":
            self.pool()  # start the solver process now, not on the first round
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.run_forever(self._stop), name="kizuna-round-runner")

    async def stop(self, timeout: float = 10.0) -> None:
        if self._task is not None and self._stop is not None:
            self._stop.set()
            self._task.cancel()  # a round being solved is handed back to the queue
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout)
            self._task = None
        self.close()


class _LeaseLost(Exception):
    """Rolls back a store whose fenced status change touched no row."""


async def run_worker(settings: Settings, stop_event: asyncio.Event) -> None:
    """``kizuna worker``: run rounds until ``stop_event`` is set, then hand back the current one."""
    engine = create_engine(settings)
    runner = RoundRunner(create_sessionmaker(engine), settings)
    task = asyncio.create_task(runner.run_forever(stop_event))
    try:
        await stop_event.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        runner.close()
        await engine.dispose()
