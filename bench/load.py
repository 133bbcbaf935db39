"""Load on loopback: uvicorn with 2 workers on PostgreSQL, pairing reads and mixed traffic.

    python bench/load.py [--people 2000] [--connections 32] [--seconds 15] [--max-requests 60000]
                         [--generator auto|wrk|asyncio] [--wrk-threads 1]
                         [--listen reuseport|shared] [--pool-size 32]

Seeds a fresh PostgreSQL database through the API (a synthetic organisation, one program,
one published round), then runs two phases, each bounded by a duration and a request count:

  reads  GET /v1/people/{id}/pairings with an integration key, random mentees
  mixed  80 % pairing reads, 10 % PUT /v1/people/{id} (profile changes), 10 % GET /v1/rounds/{id}

The load generator runs in its own process, on the same cores as the server:

  wrk      (``apt-get install wrk``; used when it is on PATH) with a generated Lua script
           that picks a random mentee (and, in the mixed phase, a random kind) per request.
           A C event loop: it needs a fraction of a core for thousands of requests/s, which
           leaves the cores to the server. wrk measures latency over all requests of a
           phase, so the mixed phase has per-kind counts and statuses but one latency figure.
  asyncio  the fallback: raw HTTP/1.1 with keep-alive over asyncio in a Python process, with
           per-kind latency; it takes a large share of a core itself, so on 2 cores its
           figures are a floor, not a ceiling.

Both are closed-loop: each connection sends its next request when the previous answer is in.

The server is 2 uvicorn worker processes. By default each has its own SO_REUSEPORT socket on
the port (``--listen reuseport``), so the kernel spreads the generator's keep-alive
connections over both, as a balancer spreads them over replicas. ``uvicorn --workers 2`` on
one shared socket (``--listen shared``) leaves that to whichever process wakes first: the
connections a generator opens at once often all land on one worker while the other idles,
and the figures swing between one core's worth and two from run to run.
Prints a table (with the generator used) and one JSON line per row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import shutil
import subprocess
import sys
import tempfile
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


# -- the wrk generator ------------------------------------------------------------------------

_LUA_TEMPLATE = r"""
-- Generated by bench/load.py: one random request per call, statuses counted per thread.
local mentees = {%(mentees)s}
local read_headers = {["Authorization"] = "Bearer %(integration)s"}
local admin_headers = {["Authorization"] = "Bearer %(admin)s"}
local write_headers = {["Authorization"] = "Bearer %(admin)s", ["Content-Type"] = "application/json"}
local round_path = "/v1/rounds/%(round_id)d"
-- Profile bodies split around the title, so every upsert is a real change ("Title <n>").
local upserts = {%(upserts)s}

local phase, limit = "reads", 0
local serial = 0
sent = {pairings = 0, upsert = 0, round = 0}
statuses = {}
answered = 0

local thread_count = 0
local threads = {}

function setup(thread)
    thread_count = thread_count + 1
    thread:set("thread_number", thread_count)
    table.insert(threads, thread)
end

function init(args)
    phase = args[1]
    limit = tonumber(args[2])
    math.randomseed(tonumber(args[3]) * 1000 + thread_number)
end

function request()
    serial = serial + 1
    local roll = 0
    if phase == "mixed" then roll = math.random() end
    if roll < 0.8 then
        sent.pairings = sent.pairings + 1
        return wrk.format("GET", "/v1/people/" .. mentees[math.random(#mentees)] .. "/pairings", read_headers)
    elseif roll < 0.9 then
        sent.upsert = sent.upsert + 1
        local u = upserts[math.random(#upserts)]
        local body = u[2] .. "Title " .. thread_number .. "-" .. serial .. u[3]
        return wrk.format("PUT", u[1], write_headers, body)
    else
        sent.round = sent.round + 1
        return wrk.format("GET", round_path, admin_headers)
    end
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    answered = answered + 1
    if limit > 0 and answered >= limit then
        wrk.thread:stop()
    end
end

function done(summary, latency, requests)
    local counts = {pairings = 0, upsert = 0, round = 0}
    local codes = {}
    for _, thread in ipairs(threads) do
        local s = thread:get("sent")
        for kind, n in pairs(s) do counts[kind] = counts[kind] + n end
        for code, n in pairs(thread:get("statuses")) do codes[code] = (codes[code] or 0) + n end
    end
    local parts = {}
    for code, n in pairs(codes) do table.insert(parts, string.format('"%%d": %%d', code, n)) end
    local e = summary.errors
    io.write(string.format(
        'WRK_RESULT {"duration_us": %%d, "requests": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
        '"socket_errors": %%d, "sent": {"pairings": %%d, "upsert": %%d, "round": %%d}, "statuses": {%%s}}\n',
        summary.duration, summary.requests, latency:percentile(50), latency:percentile(99),
        e.connect + e.read + e.write + e.timeout, counts.pairings, counts.upsert, counts.round,
        table.concat(parts, ", ")))
end
"""


def _lua_string(value: str) -> str:
    """A Lua 5.1 string literal: printable ASCII as is, every other byte as a decimal escape."""
    out = []
    for byte in value.encode("utf-8"):
        out.append(chr(byte) if 32 <= byte < 127 and byte not in (34, 92) else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def write_wrk_script(folder: Path, world: dict[str, Any]) -> Path:
    """The Lua script for wrk, with the world's ids and keys baked in."""
    upserts = []
    for external_id, payload in world["payloads"].items():
        body = {k: v for k, v in payload.items() if k != "external_id"}
        body["title"] = "\x00"
        head, tail = json.dumps(body).split('"\\u0000"')
        upserts.append(f"{{{_lua_string(f'/v1/people/{external_id}')}, {_lua_string(head + chr(34))}, {_lua_string(chr(34) + tail)}}}")
    script = _LUA_TEMPLATE % {
        "mentees": ", ".join(_lua_string(m) for m in world["mentees"]),
        "integration": world["integration"],
        "admin": world["admin"],
        "round_id": world["round_id"],
        "upserts": ",\n    ".join(upserts),
    }
    path = folder / "load.lua"
    path.write_text(script, encoding="utf-8")
    return path


def run_wrk_phase(
    port: int, script: Path, phase: str, *, connections: int, seconds: float, max_requests: int, threads: int, seed: int
) -> dict[str, Any]:
    command = [
        "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
        "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}",
        "--", phase, str(max(0, max_requests // threads)), str(seed),
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next((line for line in output.splitlines() if line.startswith("WRK_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    return json.loads(line.removeprefix("WRK_RESULT "))


def _row(phase, kind, generator, requests, seconds, p50_ms, p99_ms, errors, error_statuses) -> dict[str, Any]:
    """One table row; p50/p99/errors None where the generator cannot tell them apart."""
    return {
        "phase": phase,
        "kind": kind,
        "generator": generator,
        "requests": requests,
        "rps": round(requests / seconds, 1),
        "p50_ms": None if p50_ms is None else round(p50_ms, 2),
        "p99_ms": None if p99_ms is None else round(p99_ms, 2),
        "errors": errors,
        "error_statuses": error_statuses,
    }


def summarise_wrk(phase: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    elapsed = result["duration_us"] / 1e6
    statuses = {int(code): n for code, n in result["statuses"].items()}
    bad = {code: n for code, n in statuses.items() if not 200 <= code < 300}
    errors = sum(bad.values()) + result["socket_errors"]
    p50, p99 = result["p50_us"] / 1000, result["p99_us"] / 1000
    rows = [_row(phase, "all", "wrk", result["requests"], elapsed, p50, p99, errors, sorted(bad))]
    sent = {kind: n for kind, n in result["sent"].items() if n}
    if len(sent) > 1:
        # wrk keeps one latency histogram per run: per kind there are only the counts sent.
        for kind in sorted(sent):
            rows.append(_row(phase, kind, "wrk", sent[kind], elapsed, None, None, None, []))
    elif sent:  # one kind: its row is the whole run's (the same shape as the asyncio table)
        rows.append({**rows[0], "kind": next(iter(sent))})
    return rows


def summarise(phase: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    samples = result["samples"]
    for kind in ["all", *sorted({k for k, _, _ in samples})]:
        chosen = [s for s in samples if kind == "all" or s[0] == kind]
        latencies = [s[2] * 1000 for s in chosen]
        bad = [s[1] for s in chosen if not 200 <= s[1] < 300]
        rows.append(
            _row(phase, kind, "asyncio", len(chosen), result["elapsed"], percentile(latencies, 50),
                 percentile(latencies, 99), len(bad), sorted(set(bad)))
        )  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0, help="upper bound per phase")
    parser.add_argument("--max-requests", type=int, default=60_000, help="upper bound per phase")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--generator", choices=("auto", "wrk", "asyncio"), default="auto",
        help="auto: wrk when it is on PATH, else the asyncio generator",
    )  # fmt: skip
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (each a full event loop)")
    parser.add_argument(
        "--listen", choices=("reuseport", "shared"), default="reuseport",
        help="reuseport: one SO_REUSEPORT socket per worker process, the kernel spreads connections; "
        "shared: `uvicorn --workers N` on one socket (connections often all land on one worker)",
    )  # fmt: skip
    parser.add_argument("--pool-size", type=int, default=32, help="KIZUNA_DB_POOL_SIZE of each worker process")
    args = parser.parse_args()
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "asyncio"
    elif generator == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not on PATH (Debian/Ubuntu: apt-get install wrk)")

    rng = random.Random(args.seed)
    rows: list[dict[str, Any]] = []
    with fresh_database("postgres") as url:
        # A pool as large as the connections one worker may get: a smaller pool closes and
        # reopens PostgreSQL connections all the time under this load (SQLAlchemy closes an
        # overflow connection that comes back to a full pool).
        env = {"KIZUNA_LOG_LEVEL": "WARNING", "KIZUNA_DB_POOL_SIZE": str(args.pool_size)}
        reuse_port = args.listen == "reuseport"
        with running_server(url, workers=args.workers, extra_env=env, reuse_port=reuse_port) as base_url:
            world = seed(base_url, args.people, args.seed)
            port = int(base_url.rsplit(":", 1)[1])
            if generator == "wrk":
                rows = _wrk_phases(port, world, args)
            else:
                # A short warm-up so connection pools and caches are filled before measuring.
                run_phase(port, build_requests("reads", world, 2000, rng), args.connections, 5)
                for phase in ("reads", "mixed"):
                    requests = build_requests(phase, world, args.max_requests, rng)
                    rows += summarise(phase, run_phase(port, requests, args.connections, args.seconds))
    for row in rows:
        row.update(listen=args.listen, connections=args.connections, workers=args.workers)
    print(f"{args.workers} workers ({args.listen}), {args.connections} connections, generator {generator}")
    headers = ["phase", "kind", "generator", "requests", "rps", "p50_ms", "p99_ms", "errors"]
    print_table(headers, [["-" if row[h] is None else row[h] for h in headers] for row in rows])
    for row in rows:
        print(json.dumps(row))


def _wrk_phases(port: int, world: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kizuna-load-") as folder:
        script = write_wrk_script(Path(folder), world)
        options = {"connections": args.connections, "threads": args.wrk_threads, "seed": args.seed}
        # A short warm-up so connection pools and caches are filled before measuring.
        run_wrk_phase(port, script, "reads", seconds=3, max_requests=0, **options)
        for phase in ("reads", "mixed"):
            result = run_wrk_phase(port, script, phase, seconds=args.seconds, max_requests=args.max_requests, **options)
            rows += summarise_wrk(phase, result)
    return rows


if __name__ == "__main__":
    main()
