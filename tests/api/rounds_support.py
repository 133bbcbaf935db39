"""A small hand-made organisation whose best matching is known, and round helpers.

Everyone works 09:00–17:00 local time; round date 2026-11-18 (no DST change near it).

    ceo (15, Engineering, London) manages alice, bruno, chen, ines
    alice  mentor L9  Engineering Berlin    python 5, architecture 4       capacity 2
    bruno  mentor L8  Sales       Toronto   negotiation 5, public speaking 4  capacity 1
    chen   mentor L10 Engineering Singapore leadership 5, python 4  (en, zh) capacity 2
    ines   mentor L9  Product     Kolkata   leadership 4, python 3         capacity 2
    dana   mentee L5  Sales       London    reports to bruno; goals python, architecture
    eli    mentee L4  Engineering New York  reports to alice; goals negotiation, public speaking
    fumi   mentee L6  Engineering Tokyo     reports to chen; goals leadership, python (ja, en)
    gen    mentee L5  Marketing   Tokyo     speaks only ja → no common language with any mentor
    hana   mentee L4  Sales       London    inactive → left out of rounds

Default rules: dana → alice (bruno is her manager, chen 5 levels up, ines fine but a worse
fit), eli → bruno (alice manages him, chen 6 levels up, ines 5 levels up), fumi → ines (no
shared hours with Berlin or Toronto; chen manages her), gen unmatched (common_language).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

import matching
import matching.problem as mp
from app.db import session_scope
from app.models import Round, RoundMatch
from app.problem_builder import build_round_problem
from sqlalchemy import select
from sqlalchemy.orm import aliased
from app.models import Person

ROUND_DATE = "2026-11-18"


def person(
    ext: str, level: int, department: str, time_zone: str, *, manager: str | None = None,
    skills: dict[str, int] | None = None, goals: dict[str, int] | None = None,
    languages: tuple[str, ...] = ("en",), active: bool = True, display_name: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "external_id": ext,
        "display_name": display_name or ext.capitalize(),
        "email": f"{ext}@example.com",
        "title": "Employee",
        "department": department,
        "level": level,
        "manager_external_id": manager,
        "time_zone": time_zone,
        "working_hours": {"start": "09:00", "end": "17:00"},
        "languages": list(languages),
        "skills": [{"name": k, "level": v} for k, v in (skills or {}).items()],
        "goals": [{"skill": k, "priority": v} for k, v in (goals or {}).items()],
        "active": active,
    }


ORG = [
    person("ceo", 15, "Engineering", "Europe/London"),
    person("alice", 9, "Engineering", "Europe/Berlin", manager="ceo", skills={"python": 5, "architecture": 4}),
    person("bruno", 8, "Sales", "America/Toronto", manager="ceo", skills={"negotiation": 5, "public speaking": 4}),
    person("chen", 10, "Engineering", "Asia/Singapore", manager="ceo", skills={"leadership": 5, "python": 4}, languages=("en", "zh")),
    person("ines", 9, "Product", "Asia/Kolkata", manager="ceo", skills={"leadership": 4, "python": 3}),
    person("dana", 5, "Sales", "Europe/London", manager="bruno", goals={"python": 1, "architecture": 2}),
    person("eli", 4, "Engineering", "America/New_York", manager="alice", goals={"negotiation": 1, "public speaking": 2}),
    person("fumi", 6, "Engineering", "Asia/Tokyo", manager="chen", goals={"leadership": 1, "python": 2}, languages=("ja", "en")),
    person("gen", 5, "Marketing", "Asia/Tokyo", goals={"python": 1}, languages=("ja",)),
    person("hana", 4, "Sales", "Europe/London", goals={"python": 1}, active=False),
]  # fmt: skip

ENROLMENTS = [
    {"external_id": "alice", "role": "mentor", "capacity": 2},
    {"external_id": "bruno", "role": "mentor", "capacity": 1},
    {"external_id": "chen", "role": "mentor"},
    {"external_id": "ines", "role": "mentor", "capacity": 2},
    {"external_id": "dana", "role": "mentee"},
    {"external_id": "eli", "role": "mentee"},
    {"external_id": "fumi", "role": "mentee"},
    {"external_id": "gen", "role": "mentee"},
    {"external_id": "hana", "role": "mentee"},
]


async def push_org(client: httpx.AsyncClient, hris: dict[str, str], people: list[dict[str, Any]] | None = None) -> None:
    people = people if people is not None else ORG
    for start in range(0, len(people), 1000):
        response = await client.post("/v1/people/batch", json={"people": people[start : start + 1000]}, headers=hris)
        assert response.status_code == 200, response.text
        assert response.json()["errors"] == 0, response.text


async def create_program(client: httpx.AsyncClient, admin: dict[str, str], **fields: Any) -> int:
    response = await client.post("/v1/programs", json={"name": "Mentoring 2026", **fields}, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def enrol(client: httpx.AsyncClient, admin: dict[str, str], program_id: int, items: list[dict[str, Any]] | None = None) -> None:
    items = items if items is not None else ENROLMENTS
    for start in range(0, len(items), 1000):
        response = await client.post(
            f"/v1/programs/{program_id}/enrollments/batch", json={"enrollments": items[start : start + 1000]}, headers=admin
        )
        assert response.status_code == 200, response.text
        assert response.json()["errors"] == 0, response.text


async def setup_program(client: httpx.AsyncClient, admin: dict[str, str], hris: dict[str, str], **fields: Any) -> int:
    await push_org(client, hris)
    program_id = await create_program(client, admin, **fields)
    await enrol(client, admin, program_id)
    return program_id


async def trigger(
    client: httpx.AsyncClient, admin: dict[str, str], program_id: int, body: dict[str, Any] | None = None, **headers: str
) -> httpx.Response:
    return await client.post(
        f"/v1/programs/{program_id}/rounds", json={"round_date": ROUND_DATE, **(body or {})}, headers={**admin, **headers}
    )


async def all_pages(client: httpx.AsyncClient, url: str, headers: dict[str, str], limit: int = 200) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def pairs_of(client: httpx.AsyncClient, admin: dict[str, str], round_id: int) -> dict[str, str]:
    """mentee → mentor of a round's stored matches."""
    matches = await all_pages(client, f"/v1/rounds/{round_id}/matches", admin)
    return {m["mentee"]["external_id"]: m["mentor"]["external_id"] for m in matches}


async def stored_solution_violations(app: Any, round_id: int) -> list[mp.Violation]:
    """Rebuild the round's Problem from the database and check the matches that were stored."""
    async with session_scope(app.state.sessionmaker, write=False) as session:
        round_row = await session.get(Round, round_id)
        assert round_row is not None
        built = await build_round_problem(session, round_row, 60.0)
        mentor, mentee = aliased(Person), aliased(Person)
        rows = (
            await session.execute(
                select(RoundMatch, mentor.external_id, mentee.external_id)
                .join(mentor, mentor.id == RoundMatch.mentor_person_id)
                .join(mentee, mentee.id == RoundMatch.mentee_person_id)
                .where(RoundMatch.round_id == round_id)
            )
        ).all()
    matches = tuple(
        mp.Match(
            mentor_id=mentor_id,
            mentee_id=mentee_id,
            score=row.score,
            components=row.components,
            reasons=tuple(row.reasons),
            overlap_hours=row.overlap_hours,
            pinned=row.pinned,
        )
        for row, mentor_id, mentee_id in rows
    )
    solution = mp.Solution(
        matches=matches,
        unmatched=(),
        solver=mp.SolverInfo(status="optimal", objective=0.0, bound=0.0, seconds=0.0),
        stats={},
    )
    return matching.check(built.problem, solution)


def today() -> dt.date:
    return dt.date.fromisoformat(ROUND_DATE)
