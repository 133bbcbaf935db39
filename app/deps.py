"""Request-scoped dependencies: the database session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import session_scope

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; commits before the response is sent, rolls back on error."""
    write = request.method not in READ_ONLY_METHODS
    sessionmaker = request.app.state.sessionmaker if write else request.app.state.read_sessionmaker
    async with session_scope(sessionmaker, write=write) as session:
        yield session


# scope="function": the commit happens before the response leaves, so a 2xx means stored.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
