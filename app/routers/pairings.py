from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from app import pairings as service
from app.auth import PairingReader, ParticipantKey, TokenIssuer
from app.deps import SessionDep
from schemas.common import DEFAULT_PAGE_SIZE, EXTERNAL_ID_PATTERN, MAX_PAGE_SIZE, Page
from schemas.pairings import PairingOut, ParticipantToken

router = APIRouter(tags=["pairings"])

ExternalIdPath = Annotated[str, Path(pattern=EXTERNAL_ID_PATTERN, max_length=255)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(max_length=200)]


@router.get("/v1/people/{external_id}/pairings", response_model=Page[PairingOut])
async def person_pairings(
    external_id: ExternalIdPath,
    session: SessionDep,
    principal: PairingReader,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[PairingOut]:
    """Published pairings where the person is mentor or mentee. A participant token may ask
    only about its own person (anyone else: 404)."""
    service.visible_person(principal, external_id)
    items, next_cursor = await service.list_pairings(session, external_id, limit=limit, cursor=cursor)
    return Page[PairingOut](items=items, next_cursor=next_cursor)


@router.get("/v1/me/pairings", response_model=Page[PairingOut])
async def my_pairings(
    session: SessionDep, principal: ParticipantKey, limit: Limit = DEFAULT_PAGE_SIZE, cursor: Cursor = None
) -> Page[PairingOut]:
    """The token holder's own published pairings."""
    assert principal.person_external_id is not None
    items, next_cursor = await service.list_pairings(session, principal.person_external_id, limit=limit, cursor=cursor)
    return Page[PairingOut](items=items, next_cursor=next_cursor)


@router.post("/v1/people/{external_id}/tokens", status_code=status.HTTP_201_CREATED, response_model=ParticipantToken)
async def issue_token(
    external_id: ExternalIdPath, session: SessionDep, _: TokenIssuer, request: Request
) -> ParticipantToken:
    """A short-lived token bound to this person, for GET /v1/me/pairings (e.g. a chat bot
    handing a participant a link). The token is in this answer only."""
    ttl = request.app.state.settings.participant_token_ttl_seconds
    return await service.issue_participant_token(session, external_id, ttl)
