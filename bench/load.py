"""Load on loopback: uvicorn with 2 workers on PostgreSQL, pairing reads and mixed traffic.

    python bench/load.py [--people 2000] [--connections 32] [--seconds 15] [--max-requests 60000]

Seeds a fresh PostgreSQL database through the API (a synthetic organisation, one program,
one published round), then runs two phases, each bounded by a duration and a request count:

  reads  GET /v1/people/{id}/pairings with an integration key, random mentees
  mixed  80 % pairing reads, 10 % PUT /v1/people/{id} (profile changes), 10 % GET /v1/rounds/{id}

The load generator is a separate process speaking raw HTTP/1.1 with keep-alive over asyncio
(no third-party load tool: locust is not installed here). On a 2-core machine it competes
with the two server workers for the same cores, so the figures are a floor, not a ceiling.
Prints a table and one JSON line per phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import BENCH_ADMIN_KEY, fresh_database, percentile, print_table, running_server  # noqa: E402
from matching.synthetic import person_to_api_payload, synthetic_organisation  # noqa: E402

ROUND_DATE = "2026-11-18"


# -- seeding ------------------------------------------------------------------------------------


def seed(base_url: str, people: int, seed_value: int) -> dict[str, Any]:
    """People, a program with everyone enrolled, one published round; returns ids for traffic."""
    admin = {"Authorization": f"Bearer {BENCH_ADMIN_KEY}"}
    mentees = people * 2 // 3
    org, enrolments = synthetic_organisation(mentees, people - mentees, seed=seed_value)
    payloads = [person_to_api_payload(p) for p in org.values()]
    with httpx.Client(base_url=base_url, headers=admin, timeout=600) as client:
        for start in range(0, len(payloads), 1000):
            response = client.post("/v1/people/batch", json={"people": payloads[start : start + 1000]})
            response.raise_for_status()
        program = client.post("/v1/programs", json={"name": "Load"}).raise_for_status().json()
        items = [_enrolment(e) for e in enrolments]
        for start in range(0, len(items), 1000):
            client.post(f"/v1/programs/{program['id']}/enrollments/batch", json={"enrollments": items[start : start + 1000]}).raise_for_status()
        round_ = client.post(f"/v1/programs/{program['id']}/rounds", json={"round_date": ROUND_DATE}).raise_for_status().json()
        deadline = time.monotonic() + 600
        while (status := client.get(f"/v1/rounds/{round_['id']}").json()["status"]) not in ("completed", "failed"):
            if time.monotonic() > deadline:
                raise RuntimeError("the round did not finish")
            time.sleep(0.5)
        if status != "completed":
            raise RuntimeError(f"the round {status}")
        client.post(f"/v1/rounds/{round_['id']}/publish").raise_for_status()
        key = client.post("/v1/api-keys", json={"name": "load", "role": "integration"}).raise_for_status().json()
    mentee_ids = [e["external_id"] for e in items if e["role"] == "mentee"]
    return {
        "integration": key["secret"],
        "admin": BENCH_ADMIN_KEY,
        "mentees": mentee_ids,
        "payloads": {p["external_id"]: p for p in payloads if p["external_id"] in set(mentee_ids[:200])},
        "round_id": round_["id"],
    }


def _enrolment(enrolment: Any) -> dict[str, Any]:
    if isinstance(enrolment, dict):
        return enrolment
    role = getattr(enrolment, "role")
    item = {"external_id": getattr(enrolment, "external_id", None) or getattr(enrolment, "person_id"), "role": role}
    capacity = getattr(enrolment, "capacity", None)
    if role != "mentee" and capacity is not None:
        item["capacity"] = capacity
    return item


# -- the load generator (its own process) -------------------------------------------------------


def _request_bytes(method: str, path: str, token: str, body: bytes | None = None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + (body or b"")


def build_requests(phase: str, world: dict[str, Any], count: int, rng: random.Random) -> list[tuple[str, bytes]]:
    """Pre-built requests (kind, bytes), so the generator spends its time sending, not encoding."""
    requests: list[tuple[str, bytes]] = []
    editable = list(world["payloads"])
    for i in range(count):
        roll = rng.random() if phase == "mixed" else 0.0
        if roll < 0.8:
            mentee = rng.choice(world["mentees"])
            requests.append(("pairings", _request_bytes("GET", f"/v1/people/{mentee}/pairings", world["integration"])))
        elif roll < 0.9:
            external_id = rng.choice(editable)
            payload = dict(world["payloads"][external_id])
            payload.pop("external_id", None)
            payload["title"] = f"Title {i}"  # a real change: the row is written
            body = json.dumps(payload).encode()
            requests.append(("upsert", _request_bytes("PUT", f"/v1/people/{external_id}", world["admin"], body)))
        else:
            requests.append(("round", _request_bytes("GET", f"/v1/rounds/{world['round_id']}", world["admin"])))
    return requests


async def _read_response(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def _drive(port: int, requests: list[tuple[str, bytes]], connections: int, seconds: float) -> dict[str, Any]:
    queue = iter(requests)
    samples: list[tuple[str, int, float]] = []
    deadline = time.perf_counter() + seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for kind, raw in queue:
                if time.perf_counter() > deadline:
                    break
                started = time.perf_counter()
                writer.write(raw)
                status = await _read_response(reader)
                samples.append((kind, status, time.perf_counter() - started))
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return {"elapsed": time.perf_counter() - started, "samples": samples}


def _generator_main(port: int, requests: list[tuple[str, bytes]], connections: int, seconds: float, out: Any) -> None:
    out.put(asyncio.run(_drive(port, requests, connections, seconds)))


def run_phase(port: int, requests: list[tuple[str, bytes]], connections: int, seconds: float) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=_generator_main, args=(port, requests, connections, seconds, out))
    process.start()
    result = out.get()
    process.join()
    return result


def summarise(phase: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    samples = result["samples"]
    for kind in ["all", *sorted({k for k, _, _ in samples})]:
        chosen = [s for s in samples if kind == "all" or s[0] == kind]
        latencies = [s[2] * 1000 for s in chosen]
        rows.append(
            {
                "phase": phase,
                "kind": kind,
                "requests": len(chosen),
                "rps": round(len(chosen) / result["elapsed"], 1),
                "p50_ms": round(percentile(latencies, 50), 2),
                "p99_ms": round(percentile(latencies, 99), 2),
                "errors": sum(1 for s in chosen if not 200 <= s[1] < 300),
                "error_statuses": sorted({s[1] for s in chosen if not 200 <= s[1] < 300}),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0, help="upper bound per phase")
    parser.add_argument("--max-requests", type=int, default=60_000, help="upper bound per phase")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    rows: list[dict[str, Any]] = []
    with fresh_database("postgres") as url:
        env = {"KIZUNA_LOG_LEVEL": "WARNING", "KIZUNA_DB_POOL_SIZE": "10"}
        with running_server(url, workers=args.workers, extra_env=env) as base_url:
            world = seed(base_url, args.people, args.seed)
            port = int(base_url.rsplit(":", 1)[1])
            # A short warm-up so connection pools and caches are filled before measuring.
            run_phase(port, build_requests("reads", world, 2000, rng), args.connections, 5)
            for phase in ("reads", "mixed"):
                requests = build_requests(phase, world, args.max_requests, rng)
                rows += summarise(phase, run_phase(port, requests, args.connections, args.seconds))
    headers = ["phase", "kind", "requests", "rps", "p50_ms", "p99_ms", "errors"]
    print_table(headers, [[row[h] for h in headers] for row in rows])
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
