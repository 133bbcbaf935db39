"""Database rows → ``matching.Problem``.

Who takes part in a round:
- enrolled people who are active and not erased;
- in traditional/reverse programs, a mentee with an active pairing in the program is left out
  as a mentee, and a mentor offers capacity − active pairings (none left: left out as a mentor);
  in peer programs anyone with an active pairing sits the round out;
- everyone above an enrolled person in the org chart is loaded too (id, manager, level, time
  zone only), because the management-chain rule walks through people who are not enrolled.

Large rounds are converted in slices with a yield to the event loop between them, so an API
process that also runs rounds keeps answering requests while a round loads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from sqlalchemy import JSON, and_, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

import matching.problem as mp
from app.models import Enrollment, Pairing, Person, Program, Round, RoundUnmatched
from app.people import chunks

YIELD_EVERY = 2000


def program_snapshot(program: Program) -> dict[str, Any]:
    """What a round copies from its program when triggered (later edits do not reach it)."""
    return {
        "relationship": program.relationship,
        "objective": program.objective,
        "weights": dict(program.weights),
        "rules": dict(program.rules),
    }


def _dataclass_kwargs(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in values.items() if key in names}


def engine_program(snapshot: dict[str, Any]) -> mp.Program:
    return mp.Program(
        relationship=snapshot["relationship"],
        objective=snapshot["objective"],
        weights=mp.Weights(**_dataclass_kwargs(mp.Weights, snapshot["weights"])),
        rules=mp.Rules(**_dataclass_kwargs(mp.Rules, snapshot["rules"])),
    )


def minutes(hhmm: str) -> int:
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


@dataclass(slots=True)
class BuiltProblem:
    problem: mp.Problem
    person_ids: dict[str, int]  # external id → people.id of every participant
    # Enrolled people the round leaves out, and why (for pin validation messages).
    left_out: dict[str, str] = field(default_factory=dict)


_PERSON_COLUMNS = (
    Person.id, Person.external_id, Person.level, Person.time_zone, Person.work_start, Person.work_end,
    Person.department, Person.division, Person.manager_external_id, Person.active, Person.erased_at,
)  # fmt: skip
_JSON_LISTS = (Person.languages, Person.skills, Person.goals, Enrollment.blocked, Enrollment.preferred)


def _json_lists(session: AsyncSession):  # type: ignore[no-untyped-def]
    """The five JSON list columns as one JSON array per row: one decode per row instead of
    five (decoding was a third of the time to load a 30k-person round)."""
    if session.bind.dialect.name == "postgresql":
        bundle = func.json_build_array(*_JSON_LISTS)
    else:  # SQLite stores JSON as text; json() embeds it as JSON rather than as a string
        bundle = func.json_array(*(func.json(column) for column in _JSON_LISTS))
    return type_coerce(bundle, JSON).label("lists")


class _Interned:
    """One shared Skill/Goal object per (name, level): 30k profiles hold a few hundred
    distinct skills, and building 400k small objects dominated loading a big round."""

    def __init__(self) -> None:
        self.skills: dict[tuple[str, int], mp.Skill] = {}
        self.goals: dict[tuple[str, int], mp.Goal] = {}
        self.minutes: dict[str, int] = {}

    def skill(self, item: dict[str, Any]) -> mp.Skill:
        key = (item["name"], item["level"])
        found = self.skills.get(key)
        if found is None:
            found = self.skills[key] = mp.Skill(*key)
        return found

    def goal(self, item: dict[str, Any]) -> mp.Goal:
        key = (item["skill"], item["priority"])
        found = self.goals.get(key)
        if found is None:
            found = self.goals[key] = mp.Goal(*key)
        return found

    def minute(self, hhmm: str) -> int:
        found = self.minutes.get(hhmm)
        if found is None:
            found = self.minutes[hhmm] = minutes(hhmm)
        return found


def _engine_person(row: Any, cache: _Interned) -> mp.Person:
    skill, goal = cache.skill, cache.goal
    languages, skills, goals = row.lists[0], row.lists[1], row.lists[2]
    return mp.Person(
        id=row.external_id,
        level=row.level,
        time_zone=row.time_zone,
        work_start_min=cache.minute(row.work_start),
        work_end_min=cache.minute(row.work_end),
        department=row.department,
        division=row.division,
        manager_id=row.manager_external_id,
        languages=tuple(languages or ()),
        skills=tuple([skill(s) for s in skills or ()]),
        goals=tuple([goal(g) for g in goals or ()]),
    )


async def _load_chain_people(session: AsyncSession, people: dict[str, mp.Person]) -> None:
    """Add everyone above the loaded people in the org chart (a few queries, one per level)."""
    frontier = {p.manager_id for p in people.values() if p.manager_id and p.manager_id not in people}
    while frontier:
        found: list[Any] = []
        for chunk in chunks(sorted(frontier)):
            result = await session.execute(
                select(Person.external_id, Person.manager_external_id, Person.level, Person.time_zone).where(
                    Person.external_id.in_(chunk)
                )
            )
            found.extend(result.all())
        for row in found:
            people[row.external_id] = mp.Person(
                id=row.external_id, level=row.level, time_zone=row.time_zone, manager_id=row.manager_external_id
            )
        frontier = {row.manager_external_id for row in found if row.manager_external_id} - people.keys()


async def _active_pairing_counts(session: AsyncSession, program_id: int) -> tuple[dict[int, int], set[int]]:
    """(mentor person id → active pairings, mentee person ids with an active pairing)."""
    result = await session.execute(
        select(Pairing.mentor_person_id, Pairing.mentee_person_id).where(
            Pairing.program_id == program_id, Pairing.status == "active"
        )
    )
    mentor_load: dict[int, int] = {}
    paired_mentees: set[int] = set()
    for mentor_id, mentee_id in result.all():
        mentor_load[mentor_id] = mentor_load.get(mentor_id, 0) + 1
        paired_mentees.add(mentee_id)
    return mentor_load, paired_mentees


async def _past_pairs(session: AsyncSession, program_id: int) -> frozenset[tuple[str, str]]:
    mentor, mentee = aliased(Person), aliased(Person)
    result = await session.execute(
        select(mentor.external_id, mentee.external_id)
        .select_from(Pairing)
        .join(mentor, mentor.id == Pairing.mentor_person_id)
        .join(mentee, mentee.id == Pairing.mentee_person_id)
        .where(Pairing.program_id == program_id)
    )
    return frozenset((m, e) for m, e in result.all())


async def _previously_unmatched(session: AsyncSession, program_id: int) -> dict[str, int]:
    """Mentee → how many published rounds of this program left them unmatched."""
    result = await session.execute(
        select(Person.external_id, func.count(func.distinct(RoundUnmatched.round_id)))
        .select_from(RoundUnmatched)
        .join(Round, and_(Round.id == RoundUnmatched.round_id, Round.program_id == program_id))
        .join(Person, Person.id == RoundUnmatched.person_id)
        .where(Round.status == "published", RoundUnmatched.role.in_(("mentee", "both")))
        .group_by(Person.external_id)
    )
    return {ext: count for ext, count in result.all()}


def _participation(
    role: str, capacity: int, person_id: int, relationship: str, mentor_load: dict[int, int], paired: set[int]
) -> tuple[str | None, int, str | None]:
    """The role and capacity a person takes this round, or (None, 0, why) when left out."""
    if relationship == "peer":
        if person_id in paired or mentor_load.get(person_id):
            return None, 0, "already has an active pairing in this program"
        return role, capacity, None
    can_mentee = role in ("mentee", "both") and person_id not in paired
    remaining = capacity - mentor_load.get(person_id, 0)
    can_mentor = role in ("mentor", "both") and remaining > 0
    if can_mentee and can_mentor:
        return "both", remaining, None
    if can_mentee:
        return "mentee", 0, None
    if can_mentor:
        return "mentor", remaining, None
    if role == "mentee":
        return None, 0, "already has an active pairing in this program"
    if role == "mentor":
        return None, 0, "has no mentor capacity left (active pairings fill it)"
    return None, 0, "already has an active pairing and no mentor capacity left"


async def build_problem(
    session: AsyncSession,
    *,
    program_id: int,
    snapshot: dict[str, Any],
    round_date: date,
    pins: Sequence[Sequence[str]] = (),
    blocks: Sequence[Sequence[str]] = (),
    time_limit_seconds: float = 60.0,
    only: set[str] | None = None,
) -> BuiltProblem:
    """The round's Problem from the current enrolments and pairings. ``only`` restricts the
    participants to these external ids (pin validation needs just the pinned people)."""
    program = engine_program(snapshot)
    relationship = program.relationship
    default_capacity = program.rules.default_mentor_capacity
    mentor_load, paired = await _active_pairing_counts(session, program_id)

    query = (
        select(Enrollment.role, Enrollment.capacity, _json_lists(session), *_PERSON_COLUMNS)
        .join(Person, Person.id == Enrollment.person_id)
        .where(Enrollment.program_id == program_id)
        .order_by(Person.external_id)
    )
    if only is not None:
        query = query.where(Person.external_id.in_(sorted(only)))
    # Core, not the ORM: plain rows, without the ORM's per-row bookkeeping.
    connection = await session.connection()
    rows = (await connection.execute(query)).all()

    cache = _Interned()
    people: dict[str, mp.Person] = {}
    enrollments: list[mp.Enrollment] = []
    person_ids: dict[str, int] = {}
    left_out: dict[str, str] = {}
    for count, row in enumerate(rows, start=1):
        if count % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        people[row.external_id] = _engine_person(row, cache)  # inactive people still sit in others' chains
        if row.erased_at is not None or not row.active:
            left_out[row.external_id] = "was erased" if row.erased_at is not None else "is inactive"
            continue
        capacity = row.capacity if row.capacity is not None else default_capacity
        role, capacity, why = _participation(row.role, capacity, row.id, relationship, mentor_load, paired)
        if role is None:
            left_out[row.external_id] = why or "is left out"
            continue
        person_ids[row.external_id] = row.id
        enrollments.append(
            mp.Enrollment(
                person_id=row.external_id,
                role=role,  # type: ignore[arg-type]
                capacity=capacity if role != "mentee" else None,
                blocked=frozenset(row.lists[3] or ()),
                preferred=frozenset(row.lists[4] or ()),
            )
        )
    await _load_chain_people(session, people)

    past_pairs = frozenset()
    if program.rules.avoid_repeat_pairs:
        past_pairs = await _past_pairs(session, program_id)
    problem = mp.Problem(
        program=program,
        people=people,
        enrollments=tuple(enrollments),
        round_date=round_date,
        pins=tuple((m, e) for m, e in pins),
        blocks=tuple((m, e) for m, e in blocks),
        past_pairs=past_pairs,
        previously_unmatched=await _previously_unmatched(session, program_id),
        time_limit_seconds=time_limit_seconds,
    )
    return BuiltProblem(problem=problem, person_ids=person_ids, left_out=left_out)


async def build_round_problem(session: AsyncSession, round_row: Round, time_limit_seconds: float) -> BuiltProblem:
    return await build_problem(
        session,
        program_id=round_row.program_id,
        snapshot=round_row.program_snapshot,
        round_date=round_row.round_date,
        pins=round_row.pins,
        blocks=round_row.blocks,
        time_limit_seconds=time_limit_seconds,
    )
