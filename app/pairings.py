"""Published pairings as integrations and participants read them, and participant tokens.

Only published rounds ever create pairings, so drafts cannot leak through here. A participant
token is bound to one person: asking about anyone else answers 404, as if they did not exist.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.auth import Principal, create_key
from app.errors import NotFound
from app.models import Pairing, Person, Program, RoundMatch
from app.models.base import utcnow
from app.pagination import decode_cursor, encode_cursor
from app.people import get_live_person
from schemas.pairings import Counterpart, Overlap, OverlapWindow, PairingOut, ParticipantToken, ProgramRef


def counterpart(person: Person) -> Counterpart:
    if person.erased_at is not None:
        return Counterpart(
            external_id=person.external_id,
            display_name=None,
            email=None,
            title=None,
            department=None,
            time_zone=None,
            erased=True,
        )
    return Counterpart(
        external_id=person.external_id,
        display_name=person.display_name,
        email=person.email,
        title=person.title,
        department=person.department,
        time_zone=person.time_zone,
    )


def visible_person(principal: Principal, external_id: str) -> None:
    """A participant sees only themselves; everything else is 'not found'."""
    if principal.role == "participant" and principal.person_external_id != external_id:
        raise NotFound(f"No person with external id {external_id!r}.")


async def list_pairings(
    session: AsyncSession, external_id: str, *, limit: int, cursor: str | None
) -> tuple[list[PairingOut], str | None]:
    person = await get_live_person(session, external_id)
    after = decode_cursor(cursor)
    mentor, mentee = aliased(Person), aliased(Person)
    query = (
        select(Pairing, RoundMatch, Program.name, mentor, mentee)
        .join(RoundMatch, RoundMatch.id == Pairing.match_id)
        .join(Program, Program.id == Pairing.program_id)
        .join(mentor, mentor.id == Pairing.mentor_person_id)
        .join(mentee, mentee.id == Pairing.mentee_person_id)
        .where(or_(Pairing.mentor_person_id == person.id, Pairing.mentee_person_id == person.id))
        .order_by(Pairing.id)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(Pairing.id > after)
    rows = (await session.execute(query)).all()
    items = []
    for pairing, match, program_name, mentor_row, mentee_row in rows[:limit]:
        as_mentor = pairing.mentor_person_id == person.id
        items.append(
            PairingOut(
                id=pairing.id,  # type: ignore[arg-type]
                program=ProgramRef(id=pairing.program_id, name=program_name),
                role="mentor" if as_mentor else "mentee",
                counterpart=counterpart(mentee_row if as_mentor else mentor_row),
                score=match.score,
                components=match.components,
                reasons=match.reasons,
                overlap=Overlap(
                    hours=match.overlap_hours,
                    windows=[OverlapWindow(start_utc=s, end_utc=e) for s, e in match.overlap_windows],  # type: ignore[arg-type]
                ),
                status=pairing.status,  # type: ignore[arg-type]
                published_at=pairing.published_at,
            )
        )
    next_cursor = encode_cursor(rows[limit - 1][0].id) if len(rows) > limit else None
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
