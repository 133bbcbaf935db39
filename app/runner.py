"""The round runner: claim a queued round, load → solve → store it off the event loop, repeat.

It runs inside the API process by default (``KIZUNA_RUNNER=inprocess``) and as separate
``kizuna worker`` processes (``run_worker``) that share one PostgreSQL. Correctness does not
depend on how many run: claims are atomic, a lease is renewed while a round runs, a round
whose lease expired is claimed again (up to ``runner_max_attempts``), and results are stored
in one transaction fenced on the lease token (see ``app/rounds.py``).

By default (``runner_executor="process"``) the whole pipeline of a claimed round — building
the Problem from the database, solving, storing — runs in a spawned worker process with its
own database connection. Only the claim and the lease heartbeat stay in the API process. The
reason is the API's latency: a large round means seconds of CPU in the solver and hundreds of
milliseconds of GIL-holding work around it (materialising 30k profiles, pickling the Problem
and the Solution, serialising 20k result rows); in the API process, any of it stalls every
request. ``runner_executor="thread"`` keeps load and store on the event loop and solves in a
thread: deterministic and cheap for tests.
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
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import matching
import matching.problem as mp
from app.db import create_engine, create_sessionmaker, session_scope
from app.metrics import observe_round_finished
from app.models import Round
from app.models.base import utcnow
from app.problem_builder import BuiltProblem, build_round_problem
from app.rounds import Claim, claim_next_round, problem_details, release_round, renew_lease, store_failure, store_results
from app.settings import Settings

log = logging.getLogger("kizuna.runner")

Outcome = Literal["completed", "failed", "lease_lost", "released"]
Solve = Callable[[mp.Problem], Awaitable[mp.Solution]]


@dataclass(slots=True)
class RunResult:
    round_id: int
    outcome: Outcome
    timings: dict[str, float] = field(default_factory=dict)  # load / solve / store seconds (store incl. commit)
    solver_seconds: float | None = None
    solver_status: str | None = None


# ---------------------------------------------------------------------------------------------
# The pipeline of one claimed round (runs in the API/worker process, or in the solver process)


async def _load(sessionmaker: async_sessionmaker[AsyncSession], claim: Claim, settings: Settings) -> BuiltProblem:
    async with session_scope(sessionmaker, write=False) as session:
        if session.bind.dialect.name == "postgresql":
            # One snapshot for all the reads that make up the problem.
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        round_row = await session.get(Round, claim.round_id)
        assert round_row is not None
        return await build_round_problem(session, round_row, settings.round_time_limit_seconds)


class _LeaseLost(Exception):
    """Rolls back a store whose fenced status change touched no row."""


def _is_transient(exc: BaseException) -> bool:
    """A lost or unreachable database: worth another attempt, not a verdict on the round."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (InterfaceError, OSError))


def _step_failed(step: str, claim: Claim, exc: BaseException) -> str:
    # The exception's class only: its message may quote SQL parameters (names, emails).
    return f"{step} round {claim.round_id} failed ({type(exc).__name__}); the runner's log has the traceback."


async def _fail(
    sessionmaker: async_sessionmaker[AsyncSession], claim: Claim, error: dict[str, Any], timings: dict[str, float]
) -> RunResult:
    async with session_scope(sessionmaker) as session:
        stored = await store_failure(session, claim, error)
    return RunResult(claim.round_id, "failed" if stored else "lease_lost", timings)


async def execute_claimed_round(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, claim: Claim, solve: Solve
) -> RunResult:
    """Load, solve and store one claimed round.

    An error in any step — loading, solving or storing — becomes a failed round with a
    problem+json ``error`` (stored fenced on the lease, so a stale runner changes nothing).
    Only a lost database connection propagates: the round stays ``running`` and is retried
    after its lease expires, like a crashed runner's (up to ``runner_max_attempts``).
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    try:
        built = await _load(sessionmaker, claim, settings)
    except Exception as exc:
        if _is_transient(exc):
            raise  # the database is unreachable: retried through the lease
        log.exception("loading round %s failed", claim.round_id)
        error = problem_details("round-load-error", "Round could not be loaded", 500, _step_failed("Loading", claim, exc))
        return await _fail(sessionmaker, claim, error, timings)
    timings["load_seconds"] = round(time.perf_counter() - started, 4)

    started = time.perf_counter()
    try:
        solution = await solve(built.problem)
    except ValueError as exc:  # the engine's word for a problem it cannot solve as asked
        error = problem_details("invalid-round", "Round cannot be solved", 422, str(exc))
        return await _fail(sessionmaker, claim, error, timings)
    except Exception as exc:
        log.exception("solver failed on round %s", claim.round_id)
        error = problem_details("solver-error", "Solver error", 500, f"{type(exc).__name__}: {exc}"[:500])
        return await _fail(sessionmaker, claim, error, timings)
    timings["solve_seconds"] = round(time.perf_counter() - started, 4)

    started = time.perf_counter()
    try:
        async with session_scope(sessionmaker) as session:
            if not await store_results(session, claim, built, solution, dict(timings)):
                raise _LeaseLost
    except _LeaseLost:
        log.warning("round %s: lease lost before storing; results dropped", claim.round_id)
        return RunResult(claim.round_id, "lease_lost", timings)
    except Exception as exc:
        if _is_transient(exc):
            raise
        log.exception("storing round %s failed", claim.round_id)
        error = problem_details("round-store-error", "Round results could not be stored", 500, _step_failed("Storing", claim, exc))
        return await _fail(sessionmaker, claim, error, timings)  # in a new transaction, fenced on the lease
    timings["store_seconds"] = round(time.perf_counter() - started, 4)  # with the commit
    return RunResult(
        claim.round_id, "completed", timings, solver_seconds=solution.solver.seconds, solver_status=solution.solver.status
    )


async def _solve_inline(problem: mp.Problem) -> mp.Solution:
    return matching.solve(problem)  # already off the API's loop: this is the solver process


def run_claimed_round_in_worker(settings_values: dict[str, Any], claim: Claim) -> RunResult:
    """Entry point in the solver process (must be a picklable module-level function)."""

    async def pipeline() -> RunResult:
        settings = Settings(**settings_values)
        engine = create_engine(settings.model_copy(update={"db_pool_size": 2}))
        try:
            return await execute_claimed_round(create_sessionmaker(engine), settings, claim, _solve_inline)
        finally:
            await engine.dispose()

    return asyncio.run(pipeline())


def _warm_up() -> bool:
    """Runs in a fresh solver process: pay the imports (numpy, OR-Tools, SQLAlchemy) and the
    matching kernels' compilation (or cache load) up front, not in the first round."""
    import app.rounds  # noqa: F401

    seconds = matching.warm_up()
    log.info("solver process ready: matching kernels warmed up in %.2f s", seconds)
    return True


def _default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------------------------
# The runner: claims, heartbeats, the loop


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

    async def run_once(self) -> RunResult | None:
        """Claim one round, then load, solve and store it. None when nothing was claimable."""
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
        """Run a claimed round while a heartbeat keeps its lease."""
        keeper = asyncio.create_task(self._keep_lease(claim))
        started = time.perf_counter()
        try:
            if self.settings.runner_executor == "process":
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(
                    self.pool(), run_claimed_round_in_worker, self.settings.model_dump(), claim
                )
            else:
                result = await execute_claimed_round(
                    self.sessionmaker, self.settings, claim, lambda problem: asyncio.to_thread(matching.solve, problem)
                )
        except BrokenProcessPool:
            # The solver process died (e.g. out of memory): this attempt is over; it is retried
            # through the lease like any crashed runner, up to runner_max_attempts.
            self._discard_pool()
            log.error("solver process died on round %s (attempt %s)", claim.round_id, claim.attempt)
            await self._expire_now(claim)
            return RunResult(claim.round_id, "lease_lost")
        except asyncio.CancelledError:
            # Shutting down: hand the round back instead of waiting for the lease to expire.
            # A solver process still working on it finds the round gone when it stores.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._release(claim))
            raise
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        if result.outcome in ("completed", "failed"):
            observe_round_finished(
                result.outcome,
                time.perf_counter() - started,
                solver_seconds=result.solver_seconds,
                solver_status=result.solver_status,
            )
        log.info("round %s %s: %s", claim.round_id, result.outcome, result.timings)
        return result

    async def _release(self, claim: Claim) -> None:
        async with session_scope(self.sessionmaker) as session:
            await release_round(session, claim)

    async def _expire_now(self, claim: Claim) -> None:
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

    def pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            self._pool.submit(_warm_up)
        return self._pool

    def _discard_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the solver process now; a round it was running is re-claimed after its lease."""
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
            self._task.cancel()  # a round in progress is handed back to the queue
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout)
            self._task = None
        self.close()


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
