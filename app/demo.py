"""``kizuna demo``: a realistic organisation through the real HTTP API, one round, a summary.

Everything goes through the public API, exactly as an HRIS sync and an admin would use it:
people in batches (``POST /v1/people/batch``), a program, enrolments in batches, a round,
then the round's stats, matches and unmatched people. Against ``--url`` it talks to a running
service; without it, it starts the app in this process (ASGI, no port) on a throw-away SQLite
database, with the in-process round runner.

The organisation is the benchmarks' synthetic generator (``matching.synthetic``): departments
of realistic sizes, a level pyramid, manager trees, offices on every continent, skills and goals.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

MAX_BATCH = 1000
PAGE = 200


class DemoError(Exception):
    """The service answered something the demo cannot continue from."""


@dataclass
class DemoOptions:
    mentees: int = 300
    mentors: int = 120
    seed: int = 7
    relationship: str = "traditional"
    batch_size: int = 500
    timeout_seconds: float = 300.0
    publish: bool = False


@dataclass
class DemoResult:
    round: dict[str, Any]
    matches: list[dict[str, Any]]
    unmatched: list[dict[str, Any]]
    timings: dict[str, float] = field(default_factory=dict)
    people: int = 0


# --- talking to the service ------------------------------------------------------------------


@asynccontextmanager
async def in_process_client() -> AsyncIterator[httpx.AsyncClient]:
    """The app in this process on a temporary SQLite database, with an admin key of its own."""
    from app.main import create_app
    from app.migrations import upgrade
    from app.settings import Settings

    with tempfile.TemporaryDirectory(prefix="kizuna-demo-") as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'demo.db'}"
        await asyncio.to_thread(upgrade, url)
        key = "kz_demo_" + secrets.token_urlsafe(24)
        # The solver runs in a thread: a demo process does not need a separate solver process.
        settings = Settings(
            database_url=url, bootstrap_admin_key=key, runner="inprocess", runner_executor="thread",
            runner_poll_seconds=0.2, log_level="WARNING",
        )  # fmt: skip
        application = create_app(settings)
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://kizuna.demo", headers={"Authorization": f"Bearer {key}"}
            ) as client:
                yield client


@asynccontextmanager
async def remote_client(url: str, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=60.0
    ) as client:
        yield client


async def _call(client: httpx.AsyncClient, method: str, path: str, expected: int, **kwargs: Any) -> dict[str, Any]:
    response = await client.request(method, path, **kwargs)
    if response.status_code != expected:
        detail = response.text[:500]
        raise DemoError(f"{method} {path} answered {response.status_code}: {detail}")
    return response.json()


async def _all_pages(client: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": PAGE}
        if cursor:
            params["cursor"] = cursor
        page = await _call(client, "GET", path, 200, params=params)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


# --- the flow --------------------------------------------------------------------------------


def build_organisation(options: DemoOptions) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """People payloads and enrolment items from the synthetic generator."""
    from matching.synthetic import person_to_api_payload, synthetic_organisation

    people, enrollments = synthetic_organisation(options.mentees, options.mentors, options.seed)
    payloads = [person_to_api_payload(person) for person in people.values()]
    items = []
    for enrollment in enrollments:
        item: dict[str, Any] = {"external_id": enrollment.person_id, "role": enrollment.role}
        if enrollment.capacity is not None and enrollment.role != "mentee":
            item["capacity"] = enrollment.capacity
        items.append(item)
    return payloads, items


async def run_demo(
    client: httpx.AsyncClient, options: DemoOptions, progress: Callable[[str], None] = lambda _: None
) -> DemoResult:
    timings: dict[str, float] = {}
    batch = max(1, min(options.batch_size, MAX_BATCH))

    started = time.perf_counter()
    people, enrolments = build_organisation(options)
    timings["generate"] = time.perf_counter() - started
    progress(f"generated {len(people)} people ({options.mentees} mentees, {options.mentors} mentors, seed {options.seed})")

    started = time.perf_counter()
    for start in range(0, len(people), batch):
        result = await _call(client, "POST", "/v1/people/batch", 200, json={"people": people[start : start + batch]})
        if result["errors"]:
            first = next(r for r in result["results"] if r["status"] == "error")
            raise DemoError(f"{result['errors']} people were refused, e.g. {first['external_id']}: {first.get('error')}")
    timings["people"] = time.perf_counter() - started
    progress(f"pushed {len(people)} people in batches of {batch} ({len(people) / timings['people']:.0f}/s)")

    program = await _call(
        client,
        "POST",
        "/v1/programs",
        201,
        json={"name": f"Kizuna demo (seed {options.seed})", "relationship": options.relationship},
    )
    started = time.perf_counter()
    for start in range(0, len(enrolments), batch):
        result = await _call(
            client,
            "POST",
            f"/v1/programs/{program['id']}/enrollments/batch",
            200,
            json={"enrollments": enrolments[start : start + batch]},
        )
        if result["errors"]:
            raise DemoError(f"{result['errors']} enrolments were refused")
    timings["enrol"] = time.perf_counter() - started
    progress(f"created program {program['id']} and enrolled {len(enrolments)} people")

    started = time.perf_counter()
    round_ = await _call(
        client,
        "POST",
        f"/v1/programs/{program['id']}/rounds",
        202,
        json={},
        headers={"Idempotency-Key": f"demo-{options.seed}-{secrets.token_hex(4)}"},
    )
    progress(f"queued round {round_['id']}; waiting for a runner")
    deadline = time.monotonic() + options.timeout_seconds
    while round_["status"] in ("queued", "running"):
        if time.monotonic() > deadline:
            raise DemoError(
                f"round {round_['id']} is still {round_['status']} after {options.timeout_seconds:.0f} s "
                "(is a runner active: KIZUNA_RUNNER=inprocess or a `kizuna worker`?)"
            )
        await asyncio.sleep(0.2)
        round_ = await _call(client, "GET", f"/v1/rounds/{round_['id']}", 200)
    timings["round"] = time.perf_counter() - started
    if round_["status"] != "completed":
        error = (round_.get("error") or {}).get("detail", "no detail")
        raise DemoError(f"round {round_['id']} ended {round_['status']}: {error}")

    matches = await _all_pages(client, f"/v1/rounds/{round_['id']}/matches")
    unmatched = await _all_pages(client, f"/v1/rounds/{round_['id']}/unmatched")
    if options.publish:
        round_ = await _call(client, "POST", f"/v1/rounds/{round_['id']}/publish", 200)
        progress(f"published round {round_['id']}")
    return DemoResult(round=round_, matches=matches, unmatched=unmatched, timings=timings, people=len(people))


# --- the summary -----------------------------------------------------------------------------

_NUMBER = re.compile(r"\d+(\.\d+)?")
_PARENTHESES = re.compile(r"\s*\([^)]*\)")


_LEVELS = re.compile(r"\bN levels?\b")
_AT_CAPACITY = re.compile(r"eligible mentors? (are|is) at capacity")

# The engine's rule labels (``rule_counts`` keys), in words.
RULE_WORDS = {
    "self": "the same person",
    "management_chain": "in the same management chain",
    "level_gap": "outside the level gap",
    "min_overlap": "too few shared working hours",
    "common_language": "no common language",
    "cross_functional": "same department (cross-functional required)",
    "blocked": "blocked",
    "repeat_pair": "paired in an earlier round",
    "min_score": "score below the program's minimum",
    "capacity": "no capacity",
}


def reason_kind(reason: str) -> str:
    """A reason without its particulars: "4.0 h of shared working hours (mentor 09:00…)" →
    "N h of shared working hours"; "cross-functional: Sales → Legal" → "cross-functional"."""
    head = _PARENTHESES.sub("", reason).split(":", 1)[0]
    return _LEVELS.sub("N level(s)", _NUMBER.sub("N", head)).strip()


def _table(rows: list[tuple[str, ...]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
        for row in rows
    ]


def summary(result: DemoResult, top: int = 6) -> str:
    round_ = result.round
    stats = round_.get("stats") or {}
    solver = round_.get("solver") or {}
    lines = [
        f"Round {round_['id']} — {round_['status']} ({round_['program']['relationship']}, {round_['program']['objective']})",
        "",
    ]
    lines += _table(
        [
            ("people pushed", f"{result.people}"),
            ("mentees / mentors", f"{stats.get('mentees', 0)} / {stats.get('mentors', 0)}"),
            ("matched mentees", f"{stats.get('matched_mentees', 0)}"),
            ("coverage", f"{stats.get('coverage', 0):.1%}"),
            ("mean score", f"{stats.get('mean_score', 0):.3f}"),
            ("cross-functional share", f"{stats.get('cross_functional_share', 0):.1%}"),
            ("mean shared hours", f"{stats.get('mean_overlap_hours', 0):.1f} h"),
            ("solver", f"{solver.get('status', '?')} in {solver.get('seconds', 0):.2f} s"),
            ("round wall time", f"{result.timings.get('round', 0):.2f} s"),
        ]
    )

    if result.matches:
        kinds = Counter(kind for match in result.matches for kind in {reason_kind(r) for r in match["reasons"]})
        lines += ["", f"Top reasons (share of {len(result.matches)} pairs)"]
        lines += _table([(kind, f"{count / len(result.matches):.0%}") for kind, count in kinds.most_common(top)])
        best = max(result.matches, key=lambda m: m["score"])
        lines += ["", f"Best pair: {best['mentor']['external_id']} → {best['mentee']['external_id']} (score {best['score']:.3f})"]
        lines += [f"    - {reason}" for reason in best["reasons"]]

    mentees_left = [u for u in result.unmatched if u["role"] == "mentee"]
    mentors_idle = [u for u in result.unmatched if u["role"] != "mentee"]
    lines += [
        "",
        f"Left unmatched: {len(mentees_left)} of {stats.get('mentees', 0)} mentees; "
        f"{len(mentors_idle)} mentors have no mentee this round",
    ]
    if mentees_left:
        crowded = [u for u in mentees_left if u["reasons"] and _AT_CAPACITY.search(u["reasons"][0])]
        lines += ["  Why, per mentee:"]
        lines += _table(
            [
                ("every eligible mentor was already at capacity", f"{len(crowded)}"),
                ("no mentor passed the hard rules", f"{len(mentees_left) - len(crowded)}"),
            ],
            indent="    ",
        )
        affected = Counter(label for u in mentees_left for label, n in u["rule_counts"].items() if n)
        excluded = Counter()
        for u in mentees_left:
            excluded.update(u["rule_counts"])
        lines += ["  Rules that excluded mentors for them (mentees affected, mentors excluded on average):"]
        lines += _table(
            [
                (RULE_WORDS.get(label, label), f"{count}", f"{excluded[label] / count:.1f}")
                for label, count in affected.most_common(top)
            ],
            indent="    ",
        )
        example = mentees_left[0]
        lines += [f"  For example {example['external_id']}:"] + [f"    - {r}" for r in example["reasons"]]
    return "\n".join(lines)
