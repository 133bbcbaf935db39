"""Batch upsert of synthetic people through HTTP: people per second on SQLite and PostgreSQL.

    python bench/people_upsert.py [--people 50000] [--batch 1000] [--databases sqlite,postgres] [--seed 0]

Starts uvicorn on 127.0.0.1 against a fresh database of each kind, pushes the people of a
synthetic organisation (matching.synthetic, the same generator as the engine benchmark and
`kizuna demo`) in batches of 1,000, one request at a time as an HRIS sync job would, then
pushes the same people again (all "unchanged"). Bodies are encoded before the clock starts.
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import BENCH_ADMIN_KEY, fresh_database, percentile, print_table, running_server  # noqa: E402
from matching.synthetic import person_to_api_payload, synthetic_organisation  # noqa: E402


def encoded_batches(people: int, batch: int, seed: int) -> list[bytes]:
    mentees = people * 2 // 3
    org_people, _ = synthetic_organisation(mentees, people - mentees, seed=seed)
    payloads = [person_to_api_payload(person) for person in org_people.values()]
    return [json.dumps({"people": payloads[i : i + batch]}).encode() for i in range(0, len(payloads), batch)]


def push(base_url: str, bodies: list[bytes]) -> tuple[float, list[float], dict[str, int]]:
    headers = {"Authorization": f"Bearer {BENCH_ADMIN_KEY}", "Content-Type": "application/json"}
    latencies: list[float] = []
    counts: dict[str, int] = {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
        started = time.perf_counter()
        for body in bodies:
            t0 = time.perf_counter()
            response = client.post("/v1/people/batch", content=body)
            latencies.append(time.perf_counter() - t0)
            response.raise_for_status()
            for result in response.json()["results"]:
                counts[result["status"]] = counts.get(result["status"], 0) + 1
        return time.perf_counter() - started, latencies, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    bodies = encoded_batches(args.people, args.batch, args.seed)
    total = args.people
    rows, summary = [], {"people": total, "batch": args.batch}
    for kind in args.databases.split(","):
        with fresh_database(kind) as url, running_server(url) as base_url:
            for phase in ("first push", "re-push"):
                seconds, latencies, counts = push(base_url, bodies)
                rate = total / seconds
                rows.append([
                    kind, phase, total, f"{seconds:.1f}", f"{rate:,.0f}",
                    f"{percentile(latencies, 50) * 1000:.0f}", f"{percentile(latencies, 99) * 1000:.0f}",
                    " ".join(f"{k}={v}" for k, v in sorted(counts.items())),
                ])  # fmt: skip
                summary[f"{kind}_{phase.replace(' ', '_').replace('-', '_')}_people_per_s"] = round(rate)
                if counts.get("error"):
                    raise SystemExit(f"{counts['error']} items failed on {kind}")
    print_table(["database", "phase", "people", "seconds", "people/s", "p50 ms", "p99 ms", "results"], rows)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
