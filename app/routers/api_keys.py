from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy import select

from app.auth import AdminKey, create_key, revoke_key
from app.deps import SessionDep
from app.errors import Conflict, NotFound
from app.models import ApiKey
from schemas.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from app.pagination import decode_cursor, encode_cursor
from schemas.common import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])


def _out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(id=key.id, name=key.name, role=key.role, prefix=key.prefix, created_at=key.created_at, revoked_at=key.revoked_at)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_api_key(body: ApiKeyCreate, session: SessionDep, _: AdminKey) -> ApiKeyCreated:
    """Create a key; its secret is in this answer only."""
    key, secret = await create_key(session, name=body.name, role=body.role)
    return ApiKeyCreated(**_out(key).model_dump(), secret=secret)


@router.get("", response_model=Page[ApiKeyOut])
async def list_api_keys(
    session: SessionDep,
    _: AdminKey,
    include_revoked: bool = False,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[ApiKeyOut]:
    """Keys (never their secrets) by id; participant tokens are not listed."""
    query = select(ApiKey).where(ApiKey.role != "participant").order_by(ApiKey.id).limit(limit + 1)
    after = decode_cursor(cursor, str)
    if after is not None:
        query = query.where(ApiKey.id > after)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    keys = list((await session.execute(query)).scalars())
    next_cursor = encode_cursor(keys[limit - 1].id) if len(keys) > limit else None
    return Page[ApiKeyOut](items=[_out(key) for key in keys[:limit]], next_cursor=next_cursor)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(
    key_id: Annotated[str, Path(max_length=36)], session: SessionDep, principal: AdminKey
) -> Response:
    if key_id == principal.key_id:
        raise Conflict("A key cannot revoke itself; use another admin key.")
    if not await revoke_key(session, key_id):
        raise NotFound(f"No active API key {key_id!r}.")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
