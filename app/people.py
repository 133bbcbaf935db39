"""People: upsert (single and batch through one code path), read, list, patch, erase.

Services flush but never commit; the request's session commits.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import JSON, String, and_, bindparam, cast, column, func, literal_column, null, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import keys_revoked
from app.batch import BatchValidation, first_error
from app.errors import Conflict, InvalidInput, NotFound
from app.models import ApiKey, Pairing, Person, RoundMatch
from app.models.base import UTCDateTime, utcnow
from app.pagination import decode_cursor, encode_cursor
from schemas.people import BatchItemResult, PersonBatchItem, PersonFields, PersonOut, PersonPut

ERASED = "this person was erased and cannot be re-created"
MANAGER_LOCK_KEY = 0x4B5A_4D47  # "KZMG": the advisory lock serialising manager changes
ERASED_REASON = "explanation removed: a participant's personal data was erased"

# Keep IN (...) lists and multi-row VALUES well under SQLite's and PostgreSQL's parameter caps.
CHUNK = 500

PROFILE_COLUMNS = (
    "display_name", "email", "title", "department", "division", "level", "manager_external_id",
    "time_zone", "work_start", "work_end", "crosses_midnight", "languages", "skills", "goals", "active",
)  # fmt: skip


def profile_columns(item: PersonFields) -> dict[str, Any]:
    """The column values of a validated profile, with the hash used to answer "unchanged"."""
    values: dict[str, Any] = {
        "display_name": item.display_name,
        "email": item.email,
        "title": item.title,
        "department": item.department,
        "division": item.division,
        "level": item.level,
        "manager_external_id": item.manager_external_id,
        "time_zone": item.time_zone,
        "work_start": item.working_hours.start,
        "work_end": item.working_hours.end,
        "crosses_midnight": item.working_hours.crosses_midnight,
        "languages": list(item.languages),
        "skills": [{"name": s.name, "level": s.level} for s in item.skills],
        "goals": [{"skill": g.skill, "priority": g.priority} for g in item.goals],
        "active": item.active,
    }
    canonical = json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    values["content_hash"] = hashlib.sha256(canonical.encode()).hexdigest()
    return values


def person_out(row: Person) -> PersonOut:
    return PersonOut(
        external_id=row.external_id,
        display_name=row.display_name,
        email=row.email,
        title=row.title,
        department=row.department,
        division=row.division,
        level=row.level,
        manager_external_id=row.manager_external_id,
        time_zone=row.time_zone,
        working_hours={"start": row.work_start, "end": row.work_end, "crosses_midnight": row.crosses_midnight},
        languages=row.languages,
        skills=row.skills,
        goals=row.goals,
        active=row.active,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def person_as_input(row: Person) -> dict[str, Any]:
    """The stored profile in request shape, so a PATCH can be merged and re-validated whole."""
    out = person_out(row).model_dump(exclude={"external_id", "created_at", "updated_at"})
    return {key: value for key, value in out.items() if value is not None}


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    """Slices of at most ``size``: keeps IN (...) lists under the databases' parameter caps."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


async def _load_rows(session: AsyncSession, external_ids: Iterable[str]) -> dict[str, Person]:
    ids = sorted(set(external_ids))
    rows: dict[str, Person] = {}
    for chunk in chunks(ids):
        result = await session.execute(select(Person).where(Person.external_id.in_(chunk)))
        rows.update({row.external_id: row for row in result.scalars()})
    return rows


async def _load_states(session: AsyncSession, external_ids: Iterable[str]) -> dict[str, Any]:
    """What an upsert needs to know of stored people: columns only, no JSON decoding."""
    ids = sorted(set(external_ids))
    states: dict[str, Any] = {}
    for chunk in chunks(ids):
        query = select(
            Person.external_id, Person.content_hash, Person.erased_at, Person.manager_external_id
        ).where(Person.external_id.in_(chunk))
        states.update({row.external_id: row for row in (await session.execute(query)).all()})
    return states


async def _stored_managers(session: AsyncSession, start: set[str], known: dict[str, str | None]) -> None:
    """Fill ``known`` with the stored manager of every id reachable upwards from ``start``."""
    frontier = {ext for ext in start if ext not in known}
    while frontier:
        found: dict[str, str | None] = {}
        for chunk in chunks(sorted(frontier)):
            result = await session.execute(
                select(Person.external_id, Person.manager_external_id).where(Person.external_id.in_(chunk))
            )
            found.update({ext: mgr for ext, mgr in result.all()})
        for ext in frontier:
            known[ext] = found.get(ext)  # a manager not stored yet ends the chain for now
        frontier = {mgr for mgr in found.values() if mgr and mgr not in known}


def _cycle_through(start: str, manager_of: dict[str, str | None]) -> list[str] | None:
    path = [start]
    seen = {start}
    current = manager_of.get(start)
    while current:
        path.append(current)
        if current == start:
            return path
        if current in seen:  # a cycle above this person that does not include them
            return None
        seen.add(current)
        current = manager_of.get(current)
    return None


async def _manager_errors(session: AsyncSession, proposed: dict[str, str | None]) -> dict[str, str]:
    """Errors for profiles whose manager would be themselves or close a management cycle."""
    errors = {ext: "a person cannot be their own manager" for ext, mgr in proposed.items() if mgr == ext}
    candidates = {ext: mgr for ext, mgr in proposed.items() if ext not in errors}
    stored: dict[str, str | None] = {}
    await _stored_managers(session, {mgr for mgr in candidates.values() if mgr}, stored)
    # Drop cyclic items until none is left: a rejected item keeps its stored manager,
    # which may close a cycle with an item accepted before.
    while True:
        manager_of = {**stored, **candidates}
        new_errors = {}
        for ext in candidates:
            cycle = _cycle_through(ext, manager_of)
            if cycle:
                new_errors[ext] = "manager cycle: " + " → ".join(cycle)
        if not new_errors:
            return errors
        errors.update(new_errors)
        for ext in new_errors:
            candidates.pop(ext)
        await _stored_managers(session, set(new_errors), stored)


@dataclass(slots=True)
class UpsertOutcome:
    results: list[BatchItemResult]
    rows: dict[str, Person]  # written or unchanged rows by external id, when asked for


def _upsert_on_conflict(stmt, dialect: str):  # type: ignore[no-untyped-def]
    """ON CONFLICT DO UPDATE for both statements below. It returns a row only for people it
    inserted or changed; on PostgreSQL also whether it inserted (``xmax = 0``), because a
    concurrent batch may have created the person after our read. An erased person is never
    brought back, and an identical profile is not rewritten."""
    updatable = {col: stmt.excluded[col] for col in (*PROFILE_COLUMNS, "content_hash", "updated_at")}
    inserted = literal_column("xmax = 0") if dialect == "postgresql" else null()
    return stmt.on_conflict_do_update(
        index_elements=[Person.external_id],
        set_=updatable,
        where=and_(Person.erased_at.is_(None), Person.content_hash != stmt.excluded.content_hash),
    ).returning(Person.external_id, inserted.label("inserted"))


RECORD_COLUMNS = ("external_id", *PROFILE_COLUMNS, "content_hash")


@functools.cache
def _sqlite_upsert():  # type: ignore[no-untyped-def]
    """Executed with a list of rows: one cached compilation, sent in multi-row batches.
    Built once: constructing the statement (``excluded`` and its column proxies) cost more
    than executing it for a single profile."""
    return _upsert_on_conflict(sqlite_insert(Person), "sqlite")


@functools.cache
def _postgres_upsert():  # type: ignore[no-untyped-def]
    """All rows travel as ONE JSON parameter unpacked by json_to_recordset: psycopg would
    otherwise re-parse a 17,000-placeholder statement for every batch (most of the time).
    Built once, like the SQLite statement."""
    table = Person.__table__
    records = (
        func.json_to_recordset(cast(bindparam("rows", type_=String()), JSON))
        .table_valued(*(column(name, table.c[name].type) for name in RECORD_COLUMNS))
        .render_derived(name="r", with_types=True)
    )
    now = bindparam("now", type_=UTCDateTime())
    source = select(*(records.c[name] for name in RECORD_COLUMNS), now, now)
    return _upsert_on_conflict(
        pg_insert(table).from_select([*RECORD_COLUMNS, "created_at", "updated_at"], source), "postgresql"
    )


async def _write(session: AsyncSession, rows: list[dict[str, Any]], now: datetime) -> dict[str, bool | None]:
    """Upsert the rows (sorted by external id: one lock order for every writer); returns
    external id -> inserted (None where the database cannot tell) for rows written."""
    if session.bind.dialect.name == "postgresql":
        params = {"rows": json.dumps(rows, ensure_ascii=False), "now": now}
        result = await session.execute(_postgres_upsert(), params)
    else:
        result = await session.execute(_sqlite_upsert(), [{**row, "created_at": now, "updated_at": now} for row in rows])
    return {ext: inserted for ext, inserted in result.all()}


async def upsert_people(
    session: AsyncSession, raw_items: Sequence[Any], *, return_rows: bool = False
) -> UpsertOutcome:
    """Validate each item on its own, then create, update or leave each person unchanged.

    One bad item never spoils the others: it gets ``status="error"`` and is not written.
    """
    batch = BatchValidation(raw_items, PersonBatchItem)
    valid = batch.valid
    existing = await _load_states(session, valid)
    for ext, row in existing.items():
        if row.erased_at is not None:
            batch.reject(ext, ERASED)

    # Only a new reporting line can close a cycle: people whose manager stays as stored
    # need neither the check nor the lock.
    new_lines = {
        ext: item.manager_external_id
        for ext, (_, item) in valid.items()
        if item.manager_external_id
        and (ext not in existing or existing[ext].manager_external_id != item.manager_external_id)
    }
    if new_lines and session.bind.dialect.name == "postgresql":
        # Two concurrent writers could each close half of a cycle (A→B here, B→A there) that
        # neither sees: new reporting lines take turns. SQLite writers already queue.
        await session.execute(select(func.pg_advisory_xact_lock(MANAGER_LOCK_KEY)))
    manager_errors = await _manager_errors(session, new_lines)
    for ext, message in manager_errors.items():
        batch.reject(ext, message)

    now = utcnow()
    to_write: list[dict[str, Any]] = []
    for ext, (_, item) in sorted(valid.items()):  # sorted: the same lock order in every transaction
        values = profile_columns(item)
        row = existing.get(ext)
        if row is not None and row.content_hash == values["content_hash"]:
            batch.set(ext, "unchanged")
            continue
        to_write.append({"external_id": ext, **values})

    if to_write:
        written = await _write(session, to_write, now)
        untouched = [row["external_id"] for row in to_write if row["external_id"] not in written]
        erased = await _erased_among(session, untouched)
        for row in to_write:
            ext = row["external_id"]
            if ext in written:
                # SQLite: writers queue (BEGIN IMMEDIATE), so our earlier read is exact.
                created = written[ext] if written[ext] is not None else ext not in existing
                batch.set(ext, "created" if created else "updated")
            elif ext in erased:
                batch.reject(ext, ERASED)
            else:  # a concurrent batch stored the same profile first
                batch.set(ext, "unchanged")
    session.expire_all()
    rows = await _load_rows(session, valid) if return_rows and valid else {}
    return UpsertOutcome(results=batch.outcome(), rows=rows)


async def _erased_among(session: AsyncSession, external_ids: list[str]) -> set[str]:
    if not external_ids:
        return set()
    states = await _load_states(session, external_ids)
    return {ext for ext, row in states.items() if row.erased_at is not None}


async def get_live_person(session: AsyncSession, external_id: str) -> Person:
    row = (await session.execute(select(Person).where(Person.external_id == external_id))).scalar_one_or_none()
    if row is None or row.erased_at is not None:
        raise NotFound(f"No person with external id {external_id!r}.")
    return row


async def put_person(session: AsyncSession, external_id: str, body: PersonPut | dict[str, Any]) -> tuple[Person, bool]:
    """Create or replace one profile. Returns the row and whether it was created."""
    fields = body.model_dump() if isinstance(body, PersonPut) else body
    outcome = await upsert_people(session, [{**fields, "external_id": external_id}], return_rows=True)
    result = outcome.results[0]
    if result.status == "error":
        if result.error == ERASED:
            raise Conflict(f"Person {external_id!r} was erased and cannot be re-created.")
        raise InvalidInput(result.error or "invalid profile")
    return outcome.rows[external_id], result.status == "created"


async def patch_person(session: AsyncSession, external_id: str, changes: dict[str, Any]) -> Person:
    row = await get_live_person(session, external_id)
    merged = {**person_as_input(row), **changes}
    try:
        PersonPut.model_validate(merged)
    except ValidationError as exc:
        raise InvalidInput(first_error(exc)) from exc
    person, _ = await put_person(session, external_id, merged)
    return person


async def erase_person(session: AsyncSession, external_id: str) -> None:
    """Remove personal data and take the person out of future matching. The tombstone keeps
    the external id, level and place in the org chart so other people's chains stay correct."""
    row = await get_live_person(session, external_id)
    now = utcnow()
    await session.execute(
        update(Person)
        .where(Person.id == row.id)
        .values(
            display_name=None,
            email=None,
            title=None,
            skills=[],
            goals=[],
            languages=[],
            active=False,
            erased_at=now,
            updated_at=now,
            content_hash="erased",
        )
    )
    # Their pairings end: the counterpart keeps the record (shown as erased), nobody meets a ghost.
    await session.execute(
        update(Pairing)
        .where(
            or_(Pairing.mentor_person_id == row.id, Pairing.mentee_person_id == row.id), Pairing.status == "active"
        )
        .values(status="ended", ended_at=now)
    )
    # Explanations quote both people (goals, working hours, department): drop those that
    # involve the erased person, in drafts and in history alike.
    await session.execute(
        update(RoundMatch)
        .where(or_(RoundMatch.mentor_person_id == row.id, RoundMatch.mentee_person_id == row.id))
        .values(reasons=[ERASED_REASON], overlap_windows=[])
    )
    # A participant token speaks for the person; once they are erased it must open nothing.
    revoked = await session.execute(
        update(ApiKey)
        .where(ApiKey.role == "participant", ApiKey.person_external_id == external_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if revoked.rowcount:
        keys_revoked(session)  # and no cached principal of this process keeps it open


async def list_people(
    session: AsyncSession,
    *,
    limit: int,
    cursor: str | None,
    department: str | None,
    active: bool | None,
    updated_since: datetime | None,
) -> tuple[list[Person], str | None]:
    """Keyset pagination on the row id: a page never skips or repeats a row that existed when
    the listing started, however many rows are added meanwhile (new rows come after)."""
    after = decode_cursor(cursor)
    query = select(Person).where(Person.erased_at.is_(None)).order_by(Person.id).limit(limit + 1)
    if after is not None:
        query = query.where(Person.id > after)
    if department is not None:
        query = query.where(Person.department == department)
    if active is not None:
        query = query.where(Person.active == active)
    if updated_since is not None:
        query = query.where(Person.updated_at >= updated_since)
    rows = list((await session.execute(query)).scalars())
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor
