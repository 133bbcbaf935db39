"""A large matching round end to end on PostgreSQL, and API latency while it runs.

    python bench/round_pipeline.py [--mentees 20000] [--mentors 10000] [--seed 0]
                                   [--max-requests 20000] [--max-seconds 180]

1. A fresh PostgreSQL database is seeded directly (not through HTTP, to save time) with a
   synthetic organisation (matching.synthetic), a program with everyone enrolled, and an
   earlier program with published pairings for the readers to fetch.
2. uvicorn serves the app on 127.0.0.1 with the in-process runner (solver in a spawned process).
3. Baseline: GET /v1/people/{id}/pairings with an integration key, one request at a time.
4. The round is triggered over HTTP; the same request loop runs until the round is stored
   (bounded by --max-requests and --max-seconds) while another task polls the round.
5. Prints the load / solve / store split the runner recorded, the wall time from trigger to
   completed, and the latency percentiles; then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.migrations import sync_url  # noqa: E402
from app.models import Enrollment, Pairing, Person, Program, Round, RoundMatch  # noqa: E402
from bench.support import BENCH_ADMIN_KEY, fresh_database, percentile, print_table, running_server  # noqa: E402
from matching.synthetic import synthetic_organisation  # noqa: E402
from schemas.programs import Rules, Weights  # noqa: E402

EARLIER_PAIRINGS = 2000


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def seed(database_url: str, mentees: int, mentors: int, seed_value: int) -> tuple[int, list[str]]:
    """Insert people, the round's program with enrolments, and an earlier program whose
    published pairings the readers fetch. Returns (program id, external ids with pairings)."""
    people, enrollments = synthetic_organisation(mentees, mentors, seed=seed_value)
    now = datetime.now(UTC)
    engine = create_engine(sync_url(database_url))
    rows = [
        {
            "external_id": p.id, "display_name": f"Person {p.id}", "email": f"{p.id}@example.com",
            "title": "Employee", "department": p.department, "division": p.division, "level": p.level,
            "manager_external_id": p.manager_id, "time_zone": p.time_zone,
            "work_start": _hhmm(p.work_start_min), "work_end": _hhmm(p.work_end_min),
            "crosses_midnight": p.work_end_min <= p.work_start_min, "languages": list(p.languages),
            "skills": [{"name": s.name, "level": s.level} for s in p.skills],
            "goals": [{"skill": g.skill, "priority": g.priority} for g in p.goals],
            "active": True, "content_hash": "bench", "created_at": now, "updated_at": now,
        }
        for p in people.values()
    ]  # fmt: skip
    program = {
        "relationship": "traditional", "objective": "coverage_first", "weights": Weights().model_dump(),
        "rules": Rules().model_dump(), "created_at": now, "updated_at": now,
    }  # fmt: skip
    with engine.begin() as conn:
        for start in range(0, len(rows), 2000):
            conn.execute(insert(Person), rows[start : start + 2000])
        ids = dict(conn.execute(Person.__table__.select().with_only_columns(Person.external_id, Person.id)).all())
        program_id = conn.execute(insert(Program).values(name="Big round", **program).returning(Program.id)).scalar_one()
        enrol_rows = [
            {
                "program_id": program_id, "person_id": ids[e.person_id], "role": e.role, "capacity": e.capacity,
                "blocked": [], "preferred": [], "created_at": now, "updated_at": now,
            }
            for e in enrollments
        ]  # fmt: skip
        for start in range(0, len(enrol_rows), 2000):
            conn.execute(insert(Enrollment), enrol_rows[start : start + 2000])

        # An earlier program with published pairings: what integrations read during the round.
        earlier = conn.execute(insert(Program).values(name="Earlier", **program).returning(Program.id)).scalar_one()
        round_id = conn.execute(
            insert(Round)
            .values(
                program_id=earlier, status="published", round_date=now.date(), request_hash="bench",
                program_snapshot={k: program[k] for k in ("relationship", "objective", "weights", "rules")},
                pins=[], blocks=[], attempts=1, created_at=now, published_at=now,
            )
            .returning(Round.id)
        ).scalar_one()  # fmt: skip
        mentee_ids = [e.person_id for e in enrollments if e.role == "mentee"][:EARLIER_PAIRINGS]
        mentor_ids = [e.person_id for e in enrollments if e.role == "mentor"]
        window = [[now.replace(hour=9, minute=0).isoformat(), now.replace(hour=12, minute=0).isoformat()]]
        readers: list[str] = []
        for n, mentee in enumerate(mentee_ids):
            mentor = mentor_ids[n % len(mentor_ids)]
            match_id = conn.execute(
                insert(RoundMatch)
                .values(
                    round_id=round_id, mentor_person_id=ids[mentor], mentee_person_id=ids[mentee], score=0.5,
                    components={"goals": 0.5}, reasons=["shares 1 of the mentee's goals: python"],
                    overlap_hours=3.0, overlap_windows=window, pinned=False,
                )
                .returning(RoundMatch.id)
            ).scalar_one()  # fmt: skip
            conn.execute(
                insert(Pairing).values(
                    program_id=earlier, round_id=round_id, match_id=match_id, mentor_person_id=ids[mentor],
                    mentee_person_id=ids[mentee], status="active", published_at=now,
                )
            )  # fmt: skip
            readers += [mentee, mentor]
    engine.dispose()
    return program_id, sorted(set(readers))


async def read_loop(
    client: httpx.AsyncClient, readers: list[str], stop: asyncio.Event, max_requests: int, deadline: float
) -> list[float]:
    latencies: list[float] = []
    rng = random.Random(1)
    while not stop.is_set() and len(latencies) < max_requests and time.monotonic() < deadline:
        started = time.perf_counter()
        response = await client.get(f"/v1/people/{rng.choice(readers)}/pairings")
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200 or not response.json()["items"]:
            raise RuntimeError(f"unexpected answer {response.status_code}: {response.text[:200]}")
    return latencies


async def run(base_url: str, program_id: int, readers: list[str], args: argparse.Namespace) -> dict:
    admin = {"Authorization": f"Bearer {BENCH_ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        response = await http.post("/v1/api-keys", json={"name": "bench", "role": "integration"}, headers=admin)
        response.raise_for_status()
        integration = {"Authorization": f"Bearer {response.json()['secret']}"}

    async with httpx.AsyncClient(base_url=base_url, timeout=60, headers=integration) as reader, httpx.AsyncClient(
        base_url=base_url, timeout=60, headers=admin
    ) as admin_http:
        idle_stop = asyncio.Event()
        baseline = await read_loop(reader, readers, idle_stop, 500, time.monotonic() + 30)

        stop = asyncio.Event()
        started = time.perf_counter()
        response = await admin_http.post(f"/v1/programs/{program_id}/rounds", json={})
        response.raise_for_status()
        round_url = response.headers["location"]
        loop_task = asyncio.create_task(read_loop(reader, readers, stop, args.max_requests, time.monotonic() + args.max_seconds))
        status = "queued"
        body: dict = {}
        while time.perf_counter() - started < args.max_seconds:
            body = (await admin_http.get(round_url)).json()
            status = body["status"]
            if status not in ("queued", "running"):
                break
            await asyncio.sleep(0.25)
        wall = time.perf_counter() - started
        stop.set()
        during = await loop_task
    if status != "completed":
        print(f"round is {status} after {wall:.0f} s: {body.get('error')}", file=sys.stderr)
    timings = body.get("timings") or {}
    stats = body.get("stats") or {}
    phases = [timings.get(k) for k in ("load_seconds", "solve_seconds", "store_seconds")]
    return {
        "mentees": args.mentees,
        "mentors": args.mentors,
        "round_status": status,
        "matched_mentees": stats.get("matched_mentees"),
        "coverage": round(stats["coverage"], 4) if "coverage" in stats else None,
        "solver_status": (body.get("solver") or {}).get("status"),
        "load_s": _round(phases[0]),
        "solve_s": _round(phases[1]),
        "store_s": _round(phases[2]),
        "load_solve_store_s": _round(sum(phases)) if None not in phases else None,
        "trigger_to_completed_s": round(wall, 2) if status == "completed" else None,
        "engine_phases_s": {k.removeprefix("solver_"): v for k, v in timings.items() if k.startswith("solver_")},
        "idle_requests": len(baseline),
        "idle_p50_ms": round(percentile(baseline, 50) * 1000, 1),
        "idle_p99_ms": round(percentile(baseline, 99) * 1000, 1),
        "during_requests": len(during),
        "during_p50_ms": round(percentile(during, 50) * 1000, 1),
        "during_p99_ms": round(percentile(during, 99) * 1000, 1),
        "during_max_ms": round(max(during) * 1000, 1) if during else None,
    }


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentees", type=int, default=20_000)
    parser.add_argument("--mentors", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-requests", type=int, default=20_000)
    parser.add_argument("--max-seconds", type=float, default=300)
    args = parser.parse_args()

    with fresh_database("postgres") as url:
        t0 = time.perf_counter()
        program_id, readers = seed(url, args.mentees, args.mentors, args.seed)
        print(f"seeded {args.mentees + args.mentors} people in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        env = {"KIZUNA_RUNNER": "inprocess", "KIZUNA_RUNNER_EXECUTOR": "process", "KIZUNA_ROUND_TIME_LIMIT_SECONDS": "120"}
        with running_server(url, extra_env=env) as base_url:
            result = asyncio.run(run(base_url, program_id, readers, args))

    print_table(
        ["phase", "seconds"],
        [
            ["load (DB → Problem)", result["load_s"]],
            ["solve (spawned process)", result["solve_s"]],
            ["store (one transaction)", result["store_s"]],
            ["load + solve + store", result["load_solve_store_s"]],
            ["trigger → completed (polled)", result["trigger_to_completed_s"]],
        ],
    )
    print()
    print_table(
        ["GET /v1/people/{id}/pairings", "requests", "p50 ms", "p99 ms"],
        [
            ["idle", result["idle_requests"], result["idle_p50_ms"], result["idle_p99_ms"]],
            ["while the round runs", result["during_requests"], result["during_p50_ms"], result["during_p99_ms"]],
        ],
    )
    print()
    print(json.dumps({"benchmark": "round_pipeline", "database": "postgresql", **result}))


if __name__ == "__main__":
    main()
