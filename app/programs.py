"""Programs: create, read, list, patch, delete. Services flush; the request commits."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, InvalidInput, NotFound
from app.models import Enrollment, Pairing, Program, Round, RoundMatch, RoundUnmatched
from app.models.base import utcnow
from app.models.rounds import ACTIVE_ROUND_STATUSES
from app.pagination import decode_cursor, encode_cursor
from schemas.programs import PEER_LEVEL_GAP, ProgramCreate, ProgramOut, ProgramPatch, Rules, Weights


def program_out(row: Program) -> ProgramOut:
    return ProgramOut(
        id=row.id,  # type: ignore[arg-type]
        name=row.name,
        description=row.description,
        relationship=row.relationship,  # type: ignore[arg-type]
        objective=row.objective,  # type: ignore[arg-type]
        weights=Weights.model_validate(row.weights),
        rules=Rules.model_validate(row.rules),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _errors(exc: ValidationError, prefix: str) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{prefix}{'.' + loc if loc else ''}: {err['msg']}")
    return "; ".join(parts)


LEVEL_GAP_KEYS = ("level_gap_min", "level_gap_max")


def level_gap_defaults(relationship: str) -> dict[str, int]:
    """The level gap a relationship starts with: peers within 0–1 levels of each other,
    otherwise the Rules defaults (a mentor — or, in reverse mentoring, a mentee — 1–4 levels senior)."""
    if relationship == "peer":
        low, high = PEER_LEVEL_GAP
    else:
        low, high = (Rules.model_fields[key].default for key in LEVEL_GAP_KEYS)
    return dict(zip(LEVEL_GAP_KEYS, (low, high), strict=True))


def _rules_for(relationship: str, given: dict[str, Any]) -> Rules:
    """Validate rules; a level gap not given takes the relationship's default (``level_gap_defaults``)."""
    values = {**level_gap_defaults(relationship), **given}
    try:
        return Rules.model_validate(values)
    except ValidationError as exc:
        raise InvalidInput(_errors(exc, "rules")) from exc


async def create_program(session: AsyncSession, body: ProgramCreate) -> Program:
    rules = _rules_for(body.relationship, body.rules.model_dump(include=body.rules.model_fields_set))
    row = Program(
        name=body.name,
        description=body.description,
        relationship=body.relationship,
        objective=body.objective,
        weights=body.weights.model_dump(),
        rules=rules.model_dump(),
    )
    session.add(row)
    await session.flush()
    return row


async def get_program(session: AsyncSession, program_id: int, *, for_update: bool = False) -> Program:
    query = select(Program).where(Program.id == program_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"No program {program_id}.")
    return row


async def list_programs(session: AsyncSession, *, limit: int, cursor: str | None) -> tuple[list[Program], str | None]:
    after = decode_cursor(cursor)
    query = select(Program).order_by(Program.id).limit(limit + 1)
    if after is not None:
        query = query.where(Program.id > after)
    rows = list((await session.execute(query)).scalars())
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None  # type: ignore[arg-type]
    return rows[:limit], next_cursor


async def patch_program(session: AsyncSession, program_id: int, body: ProgramPatch) -> Program:
    """Merge a partial update. Changing ``relationship`` resets ``rules.level_gap_min/max`` to
    the new relationship's defaults unless the same PATCH sets them."""
    row = await get_program(session, program_id)
    changes = body.model_dump(exclude_unset=True)
    for field in ("name", "relationship", "objective"):
        if field in changes and changes[field] is None:
            raise InvalidInput(f"{field}: may be changed but not removed")
    relationship = changes.get("relationship", row.relationship)
    if "weights" in changes:
        try:
            row.weights = Weights.model_validate({**row.weights, **(changes["weights"] or {})}).model_dump()
        except ValidationError as exc:
            raise InvalidInput(_errors(exc, "weights")) from exc
    if "rules" in changes or relationship != row.relationship:
        stored = dict(row.rules)
        if relationship != row.relationship:
            # Stored rules hold every key, so the old relationship's level gap would otherwise
            # survive (traditional → peer keeping 1–4 would never pair two peers of one level):
            # a gap the PATCH does not set itself restarts at the new relationship's default.
            for key in LEVEL_GAP_KEYS:
                stored.pop(key, None)
        row.rules = _rules_for(relationship, {**stored, **(changes.get("rules") or {})}).model_dump()
    for field in ("name", "description", "relationship", "objective"):
        if field in changes:
            setattr(row, field, changes[field])
    row.updated_at = utcnow()
    await session.flush()
    return row


async def delete_program(session: AsyncSession, program_id: int) -> None:
    """Delete a program with its enrolments, rounds and pairings. Refused while a round is
    queued or running: its runner would otherwise write results for a program that is gone."""
    await get_program(session, program_id, for_update=True)
    busy = await session.execute(
        select(Round.id).where(Round.program_id == program_id, Round.status.in_(ACTIVE_ROUND_STATUSES)).limit(1)
    )
    busy_id = busy.scalar_one_or_none()
    if busy_id is not None:
        raise Conflict(f"Round {busy_id} of this program is queued or running; discard it first.")
    round_ids = select(Round.id).where(Round.program_id == program_id).scalar_subquery()
    await session.execute(delete(Pairing).where(Pairing.program_id == program_id))
    await session.execute(delete(RoundUnmatched).where(RoundUnmatched.round_id.in_(round_ids)))
    await session.execute(delete(RoundMatch).where(RoundMatch.round_id.in_(round_ids)))
    await session.execute(delete(Round).where(Round.program_id == program_id))
    await session.execute(delete(Enrollment).where(Enrollment.program_id == program_id))
    await session.execute(delete(Program).where(Program.id == program_id))
