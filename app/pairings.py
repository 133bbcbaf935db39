"""Published pairings as integrations and participants read them, and participant tokens.

Only published rounds ever create pairings, so drafts cannot leak through here. A participant
token is bound to one person: asking about anyone else answers 404, as if they did not exist.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal, create_key
from app.errors import NotFound
from app.models import Pairing, Person, Program, RoundMatch
from app.models.base import utcnow
from app.pagination import decode_cursor, encode_cursor
from app.people import get_live_person
from schemas.pairings import Counterpart, Overlap, OverlapWindow, PairingOut, ParticipantToken, ProgramRef


def counterpart(row: Any) -> Counterpart:
    """The other person of a pairing; an erased person shows no personal data."""
    if row.erased_at is not None:
        return Counterpart(
            external_id=row.external_id,
            display_name=None,
            email=None,
            title=None,
            department=None,
            time_zone=None,
            erased=True,
        )
    return Counterpart(
        external_id=row.external_id,
        display_name=row.display_name,
        email=row.email,
        title=row.title,
        department=row.department,
        time_zone=row.time_zone,
    )


def visible_person(principal: Principal, external_id: str) -> None:
    """A participant sees only themselves; everything else is 'not found'."""
    if principal.role == "participant" and principal.person_external_id != external_id:
        raise NotFound(f"No person with external id {external_id!r}.")


# The hot read path of integrations: one Core statement (table columns, no ORM entities, so
# no ORM compile or loading step per execution) that finds the person, their pairings and
# each counterpart.
_pairing = Pairing.__table__
_match = RoundMatch.__table__
_program = Program.__table__
_people = Person.__table__
_counterpart = _people.alias("counterpart")
_person_id = (
    select(_people.c.id)
    .where(_people.c.external_id == bindparam("external_id"), _people.c.erased_at.is_(None))
    .scalar_subquery()
)
_PAIRINGS = (
    select(
        _pairing.c.id,
        _pairing.c.program_id,
        _pairing.c.status,
        _pairing.c.published_at,
        (_pairing.c.mentor_person_id == _person_id).label("as_mentor"),
        _program.c.name.label("program_name"),
        _match.c.score,
        _match.c.components,
        _match.c.reasons,
        _match.c.overlap_hours,
        _match.c.overlap_windows,
        _counterpart.c.external_id,
        _counterpart.c.display_name,
        _counterpart.c.email,
        _counterpart.c.title,
        _counterpart.c.department,
        _counterpart.c.time_zone,
        _counterpart.c.erased_at,
    )
    .join(_match, _match.c.id == _pairing.c.match_id)
    .join(_program, _program.c.id == _pairing.c.program_id)
    .join(
        _counterpart,
        _counterpart.c.id
        == case(
            (_pairing.c.mentor_person_id == _person_id, _pairing.c.mentee_person_id),
            else_=_pairing.c.mentor_person_id,
        ),
    )
    .where(
        or_(_pairing.c.mentor_person_id == _person_id, _pairing.c.mentee_person_id == _person_id),
        _pairing.c.id > bindparam("after"),
    )
    .order_by(_pairing.c.id)
    .limit(bindparam("limit"))
)


async def list_pairings(
    session: AsyncSession, external_id: str, *, limit: int, cursor: str | None
) -> tuple[list[PairingOut], str | None]:
    after = decode_cursor(cursor) or 0
    rows = (await session.execute(_PAIRINGS, {"external_id": external_id, "after": after, "limit": limit + 1})).all()
    if not rows:
        await get_live_person(session, external_id)  # 404 for an unknown or erased person
    items = [
        PairingOut(
            id=row.id,
            program=ProgramRef(id=row.program_id, name=row.program_name),
            role="mentor" if row.as_mentor else "mentee",
            counterpart=counterpart(row),
            score=row.score,
            components=row.components,
            reasons=row.reasons,
            overlap=Overlap(
                hours=row.overlap_hours,
                windows=[OverlapWindow(start_utc=s, end_utc=e) for s, e in row.overlap_windows],
            ),
            status=row.status,
            published_at=row.published_at,
        )
        for row in rows[:limit]
    ]
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return items, next_cursor


async def issue_participant_token(session: AsyncSession, external_id: str, ttl_seconds: int) -> ParticipantToken:
    await get_live_person(session, external_id)
    expires_at: datetime = utcnow() + timedelta(seconds=ttl_seconds)
    _, secret = await create_key(
        session,
        name=f"participant {external_id}"[:200],
        role="participant",
        person_external_id=external_id,
        expires_at=expires_at,
    )
    return ParticipantToken(token=secret, expires_at=expires_at)
