"""Concurrency and failure through real processes: uvicorn with 2 workers, a private
PostgreSQL that the test stops and starts, and `kizuna worker` processes killed with SIGKILL.

The shared PostgreSQL on 127.0.0.1:5432 is never touched beyond the test database: the
restart test runs its own throw-away server (initdb into a temp dir, pg_ctl on a free port).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from bench.support import BENCH_ADMIN_KEY, free_port, running_server
from tests.api.people_payloads import batch_item
from tests.conftest import bearer, wipe

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path(os.environ.get("KIZUNA_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
ADMIN = bearer(BENCH_ADMIN_KEY)
ROUND_DATE = "2026-11-18"


def _server_env() -> dict[str, str]:
    # Rounds are claimed only by the workers a test starts; the solver runs in a thread.
    return {"KIZUNA_RUNNER": "off", "KIZUNA_RUNNER_EXECUTOR": "thread"}


async def _wait_until(predicate: Any, *, timeout: float, interval: float = 0.1, what: str) -> Any:
    """Poll an async predicate until it returns something truthy (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


# -- parallel writers ----------------------------------------------------------------------------


async def test_parallel_overlapping_batches_through_two_server_processes(database_url: str) -> None:
    """8 batches of 150 people, each overlapping its neighbours by 100, sent at once to a
    2-process server: every person is created exactly once, every row is one batch's whole
    version (no field from one batch mixed with another's), and no request fails."""
    wipe(database_url)
    batches = []
    for b in range(8):
        ids = range(b * 50, b * 50 + 150)
        batches.append([batch_item(f"c{i}", title=f"batch {b}", level=1 + b) for i in ids])
    people = {item["external_id"] for batch in batches for item in batch}

    with running_server(database_url, workers=2, extra_env=_server_env()) as base_url:
        async with httpx.AsyncClient(base_url=base_url, headers=ADMIN, timeout=60) as client:
            responses = await asyncio.gather(*(client.post("/v1/people/batch", json={"people": b}) for b in batches))
            assert [r.status_code for r in responses] == [200] * len(batches), [r.text[:200] for r in responses]
            results = [item for r in responses for item in r.json()["results"]]
            assert all(item["status"] in ("created", "updated", "unchanged") for item in results), results
            created = sorted(item["external_id"] for item in results if item["status"] == "created")

            stored: dict[str, dict[str, Any]] = {}
            cursor = None
            while True:
                page = (await client.get("/v1/people", params={"limit": 200, **({"cursor": cursor} if cursor else {})})).json()
                stored.update({p["external_id"]: p for p in page["items"]})
                cursor = page["next_cursor"]
                if cursor is None:
                    break
    assert set(stored) == people
    for person in stored.values():
        batch = int(person["title"].split()[1])
        assert person["level"] == 1 + batch, f"{person['external_id']} mixes two batches: {person}"
    assert set(created) == people, "a person was never reported created"
    # Each new person is reported "created" by exactly one of the racing batches.
    assert created == sorted(people), f"{len(created) - len(people)} people were reported 'created' twice"


async def test_parallel_triggers_of_one_program_create_one_round(database_url: str) -> None:
    wipe(database_url)
    with running_server(database_url, workers=2, extra_env=_server_env()) as base_url:
        async with httpx.AsyncClient(base_url=base_url, headers=ADMIN, timeout=60) as client:
            program_id = await _program_with_people(client, mentees=4)
            url = f"/v1/programs/{program_id}/rounds"

            plain = await asyncio.gather(*(client.post(url, json={"round_date": ROUND_DATE}) for _ in range(12)))
            statuses = sorted(r.status_code for r in plain)
            assert statuses == [202] + [409] * 11, [r.text[:200] for r in plain]
            assert all(r.headers["content-type"] == "application/problem+json" for r in plain if r.status_code == 409)
            rounds = (await client.get(url)).json()["items"]
            assert len(rounds) == 1 and rounds[0]["status"] == "queued"

            # The same Idempotency-Key from many clients at once: one round, and every answer names it.
            await client.post(f"/v1/rounds/{rounds[0]['id']}/discard")
            keyed = await asyncio.gather(
                *(client.post(url, json={"round_date": ROUND_DATE}, headers={"Idempotency-Key": "sync-42"}) for _ in range(12))
            )
            assert all(r.status_code in (200, 202) for r in keyed), [r.text[:200] for r in keyed]
            assert len({r.json()["id"] for r in keyed}) == 1
            assert len((await client.get(url)).json()["items"]) == 2  # the discarded one and the new one


async def _program_with_people(client: httpx.AsyncClient, *, mentees: int, mentors: int | None = None) -> int:
    mentors = mentors if mentors is not None else max(1, mentees // 2)
    people = [batch_item(f"mentor-{i}", level=9, department="Engineering") for i in range(mentors)]
    people += [batch_item(f"mentee-{i}", level=5, department="Sales") for i in range(mentees)]
    for start in range(0, len(people), 1000):
        response = await client.post("/v1/people/batch", json={"people": people[start : start + 1000]})
        assert response.status_code == 200 and response.json()["errors"] == 0, response.text[:300]
    program = (await client.post("/v1/programs", json={"name": "Concurrency"})).json()
    enrolments = [{"external_id": f"mentor-{i}", "role": "mentor", "capacity": 2} for i in range(mentors)]
    enrolments += [{"external_id": f"mentee-{i}", "role": "mentee"} for i in range(mentees)]
    for start in range(0, len(enrolments), 1000):
        response = await client.post(
            f"/v1/programs/{program['id']}/enrollments/batch", json={"enrollments": enrolments[start : start + 1000]}
        )
        assert response.status_code == 200 and response.json()["errors"] == 0, response.text[:300]
    return program["id"]


# -- a worker killed mid-round -------------------------------------------------------------------


@contextlib.contextmanager
def worker_process(database_url: str, *, lease_seconds: float) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "KIZUNA_DATABASE_URL": database_url,
        "KIZUNA_RUNNER_LEASE_SECONDS": str(lease_seconds),
        "KIZUNA_RUNNER_POLL_SECONDS": "0.1",
        "KIZUNA_LOG_LEVEL": "WARNING",
    }
    kizuna = Path(sys.executable).with_name("kizuna")
    # Its own process group, so SIGKILL reaches the solver process it spawns as well.
    process = subprocess.Popen([str(kizuna), "worker"], cwd=ROOT, env=env, start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.mark.skipif(not Path(sys.executable).with_name("kizuna").exists(), reason="the kizuna CLI is not installed")
async def test_a_worker_killed_mid_round_leaves_it_to_another_that_finishes_it_once(database_url: str) -> None:
    wipe(database_url)
    lease = 3.0
    with running_server(database_url, workers=1, extra_env=_server_env()) as base_url:
        async with httpx.AsyncClient(base_url=base_url, headers=ADMIN, timeout=60) as client:
            # Large enough that solving takes a while, so the kill lands while the round runs.
            program_id = await _program_with_people(client, mentees=3000, mentors=1500)
            round_id = (await client.post(f"/v1/programs/{program_id}/rounds", json={"round_date": ROUND_DATE})).json()["id"]

            async def status() -> str:
                return (await client.get(f"/v1/rounds/{round_id}")).json()["status"]

            with worker_process(database_url, lease_seconds=lease) as first:
                await _wait_until(lambda: _is(status, "running"), timeout=60, interval=0.02, what="the first worker to claim the round")
                os.killpg(first.pid, signal.SIGKILL)
                first.wait()
            assert await status() == "running", "the round finished before the kill; make it bigger"

            with worker_process(database_url, lease_seconds=lease):
                await _wait_until(lambda: _is(status, "completed"), timeout=180, interval=0.2, what="the second worker to finish it")
            body = (await client.get(f"/v1/rounds/{round_id}")).json()
            matches = []
            cursor = None
            while True:
                page = (await client.get(f"/v1/rounds/{round_id}/matches", params={"limit": 200, **({"cursor": cursor} if cursor else {})})).json()
                matches += page["items"]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
    mentees = [m["mentee"]["external_id"] for m in matches]
    assert len(mentees) == len(set(mentees)) == body["stats"]["matched_mentees"], "matches stored twice"
    if "attempts" in body:
        assert body["attempts"] == 2


async def _is(status: Any, wanted: str) -> bool:
    return await status() == wanted


# -- PostgreSQL restart during traffic ---------------------------------------------------------


def _pg_command(*args: str) -> list[str]:
    return list(args) if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *args]


def _private_postgres_unavailable() -> str | None:
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL server binaries not found in {PG_BIN} (set KIZUNA_TEST_PG_BIN)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: cannot start PostgreSQL as an unprivileged user"
    return None


class PrivatePostgres:
    """A throw-away PostgreSQL cluster in a temp dir, on a free loopback port."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="kizuna-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            _pg_command(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"),
            check=True, capture_output=True,
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _pg_command(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "start"),
            check=True, capture_output=True,
        )  # fmt: skip

    def stop(self) -> None:
        subprocess.run(_pg_command(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"), check=False, capture_output=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    reason = _private_postgres_unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the PostgreSQL restart test must run in CI: {reason}")
        pytest.skip(reason)
    server = PrivatePostgres()
    try:
        server.start()
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE kizuna")
        yield server
    finally:
        server.remove()


async def test_postgres_restart_during_traffic_fails_cleanly_and_recovers(private_postgres: PrivatePostgres) -> None:
    from app.migrations import upgrade

    url = private_postgres.url("kizuna").replace("postgresql://", "postgresql+psycopg://", 1)
    upgrade(url)
    with running_server(url, workers=1, extra_env={**_server_env(), "KIZUNA_DB_POOL_SIZE": "4"}) as base_url:
        async with httpx.AsyncClient(base_url=base_url, headers=ADMIN, timeout=15) as client:
            seen: list[tuple[str, int, str, float]] = []
            stop = asyncio.Event()

            async def traffic(n: int) -> None:
                i = 0
                while not stop.is_set():
                    started = time.monotonic()
                    if i % 2:
                        response = await client.put(f"/v1/people/t{n}-{i % 7}", json=_profile(n, i))
                    else:
                        response = await client.get("/v1/people", params={"limit": 5})
                    seen.append((response.request.method, response.status_code, response.headers.get("content-type", ""), time.monotonic() - started))
                    i += 1

            async def healthy() -> bool:
                return (await client.get("/v1/people", params={"limit": 1})).status_code == 200

            workers = [asyncio.create_task(traffic(n)) for n in range(4)]
            await _wait_until(lambda: _count(seen, 200, 20), timeout=30, what="traffic to flow")

            await asyncio.to_thread(private_postgres.stop)
            await _wait_until(lambda: _count(seen, 503, 10), timeout=30, what="503 answers during the outage")
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["database"] == "unreachable"

            await asyncio.to_thread(private_postgres.start)
            await _wait_until(healthy, timeout=30, what="the service to recover without a restart")
            before = len(seen)
            await _wait_until(lambda: _count(seen[before:], 200, 20), timeout=30, what="traffic to flow again")
            stop.set()
            await asyncio.gather(*workers)

    statuses = {status for _, status, _, _ in seen}
    assert statuses <= {200, 201, 503}, f"unexpected statuses: {sorted(statuses)}"
    failures = [(m, s, ct) for m, s, ct, _ in seen if s == 503]
    assert failures and all(ct == "application/problem+json" for _, _, ct in failures)
    assert max(d for *_, d in seen) < 10, "a request hung during the outage"
    assert (await _final_people(private_postgres)) >= 1


def _profile(n: int, i: int) -> dict[str, Any]:
    item = batch_item(f"t{n}-{i % 7}", title=f"v{i}")
    item.pop("external_id")
    return item


async def _count(seen: list[tuple[str, int, str, float]], status: int, at_least: int) -> bool:
    return sum(1 for _, s, _, _ in seen if s == status) >= at_least


async def _final_people(server: PrivatePostgres) -> int:
    with psycopg.connect(server.url("kizuna")) as conn:
        return conn.execute("SELECT count(*) FROM people").fetchone()[0]  # type: ignore[index]
