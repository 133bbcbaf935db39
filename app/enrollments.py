"""Enrolments: single and batch upsert through one code path, list, remove.

An unknown or erased person is an error for that item only (in a single PUT, a 422 with the
same message). Inactive people may be enrolled; rounds leave them out while they are inactive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, literal_column, null, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput, NotFound
from app.models import Enrollment, Person
from app.models.base import utcnow
from app.pagination import decode_cursor, encode_cursor
from app.batch import BatchValidation
from app.people import CHUNK
from app.programs import get_program
from schemas.people import BatchItemResult
from schemas.programs import EnrollmentBatchItem, EnrollmentOut

FIELDS = ("role", "capacity", "blocked", "preferred")


def enrollment_out(row: Enrollment, person: Person) -> EnrollmentOut:
    return EnrollmentOut(
        external_id=person.external_id,
        display_name=person.display_name,
        role=row.role,  # type: ignore[arg-type]
        capacity=row.capacity,
        blocked=row.blocked,
        preferred=row.preferred,
        active=person.active and person.erased_at is None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _values(item: EnrollmentBatchItem) -> dict[str, Any]:
    return {"role": item.role, "capacity": item.capacity, "blocked": item.blocked, "preferred": item.preferred}


async def _people_by_external_id(session: AsyncSession, external_ids: Sequence[str]) -> dict[str, Person]:
    found: dict[str, Person] = {}
    ids = sorted(set(external_ids))
    for start in range(0, len(ids), CHUNK):
        result = await session.execute(select(Person).where(Person.external_id.in_(ids[start : start + CHUNK])))
        found.update({row.external_id: row for row in result.scalars()})
    return found


async def _existing(session: AsyncSession, program_id: int, person_ids: Sequence[int]) -> dict[int, Enrollment]:
    found: dict[int, Enrollment] = {}
    ids = sorted(set(person_ids))
    for start in range(0, len(ids), CHUNK):
        result = await session.execute(
            select(Enrollment).where(
                Enrollment.program_id == program_id, Enrollment.person_id.in_(ids[start : start + CHUNK])
            )
        )
        found.update({row.person_id: row for row in result.scalars()})
    return found


def _upsert_statement(session: AsyncSession, rows: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(Enrollment).values(rows)
    # On PostgreSQL the row says whether it was inserted: a concurrent batch may have enrolled
    # the person after our read. (SQLite writers queue, so the earlier read is exact there.)
    inserted = literal_column("xmax = 0") if session.bind.dialect.name == "postgresql" else null()
    return stmt.on_conflict_do_update(
        index_elements=[Enrollment.program_id, Enrollment.person_id],
        set_={col: stmt.excluded[col] for col in (*FIELDS, "updated_at")},
    ).returning(Enrollment.person_id, inserted.label("inserted"))


async def upsert_enrollments(session: AsyncSession, program_id: int, raw_items: Sequence[Any]) -> list[BatchItemResult]:
    """Validate each item on its own, then create, update or leave each enrolment unchanged."""
    batch = BatchValidation(raw_items, EnrollmentBatchItem)
    valid = batch.valid
    for ext, (_, item) in list(valid.items()):
        if ext in item.blocked or ext in item.preferred:
            batch.reject(ext, "a person cannot block or prefer themselves")

    people = await _people_by_external_id(session, list(valid))
    for ext in list(valid):
        person = people.get(ext)
        if person is None or person.erased_at is not None:
            why = "was erased" if person is not None else "is unknown; push it with PUT /v1/people/{id} first"
            batch.reject(ext, f"person {ext!r} {why}")

    existing = await _existing(session, program_id, [people[ext].id for ext in valid])  # type: ignore[misc]
    now = utcnow()
    to_write: list[dict[str, Any]] = []
    for ext, (_, item) in sorted(valid.items()):  # sorted: one lock order for every writer
        person_id = people[ext].id
        values = _values(item)
        row = existing.get(person_id)  # type: ignore[arg-type]
        if row is not None and all(getattr(row, col) == values[col] for col in FIELDS):
            batch.set(ext, "unchanged")
            continue
        batch.set(ext, "updated" if row is not None else "created")
        to_write.append({"program_id": program_id, "person_id": person_id, **values, "created_at": now, "updated_at": now})

    inserted: dict[int, bool | None] = {}
    for start in range(0, len(to_write), 200):
        result = await session.execute(_upsert_statement(session, to_write[start : start + 200]))
        inserted.update({person_id: flag for person_id, flag in result.all()})
    for ext, (_, _item) in valid.items():
        flag = inserted.get(people[ext].id)  # type: ignore[arg-type]
        if flag is not None:
            batch.set(ext, "created" if flag else "updated")
    session.expire_all()
    return batch.outcome()


async def put_enrollment(
    session: AsyncSession, program_id: int, external_id: str, fields: dict[str, Any]
) -> tuple[EnrollmentOut, bool]:
    await get_program(session, program_id)
    result = (await upsert_enrollments(session, program_id, [{**fields, "external_id": external_id}]))[0]
    if result.status == "error":
        raise InvalidInput(result.error or "invalid enrolment")
    return await get_enrollment(session, program_id, external_id), result.status == "created"


async def get_enrollment(session: AsyncSession, program_id: int, external_id: str) -> EnrollmentOut:
    row = (
        await session.execute(
            select(Enrollment, Person)
            .join(Person, Person.id == Enrollment.person_id)
            .where(Enrollment.program_id == program_id, Person.external_id == external_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"{external_id!r} is not enrolled in program {program_id}.")
    return enrollment_out(row[0], row[1])


async def list_enrollments(
    session: AsyncSession, program_id: int, *, limit: int, cursor: str | None, role: str | None
) -> tuple[list[EnrollmentOut], str | None]:
    await get_program(session, program_id)
    after = decode_cursor(cursor)
    query = (
        select(Enrollment, Person)
        .join(Person, Person.id == Enrollment.person_id)
        .where(Enrollment.program_id == program_id)
        .order_by(Enrollment.id)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(Enrollment.id > after)
    if role is not None:
        query = query.where(Enrollment.role == role)
    rows = (await session.execute(query)).all()
    next_cursor = encode_cursor(rows[limit - 1][0].id) if len(rows) > limit else None
    return [enrollment_out(e, p) for e, p in rows[:limit]], next_cursor


async def delete_enrollment(session: AsyncSession, program_id: int, external_id: str) -> None:
    """Take a person out of the program's future rounds; published pairings stay."""
    await get_program(session, program_id)
    person_id = select(Person.id).where(Person.external_id == external_id).scalar_subquery()
    result = await session.execute(
        delete(Enrollment).where(Enrollment.program_id == program_id, Enrollment.person_id == person_id)
    )
    if result.rowcount == 0:
        raise NotFound(f"{external_id!r} is not enrolled in program {program_id}.")
