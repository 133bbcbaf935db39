"""API keys and roles.

Secrets are ``kz_`` + 43 URL-safe random characters (256 bits). Only their SHA-256 is
stored: a fast hash is right for high-entropy random tokens (no dictionary to guess
from), and it lets a key be found by an indexed equality lookup.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import SessionDep
from app.errors import Forbidden, Unauthorized
from app.models import ApiKey
from app.models.base import utcnow

Role = Literal["admin", "hris", "integration", "participant"]
KEY_ROLES: tuple[Role, ...] = ("admin", "hris", "integration")
SECRET_PREFIX = "kz_"
MIN_BOOTSTRAP_KEY_LENGTH = 24
# Enough of the secret to recognise a key in a list ("kz_" + 5), too little to matter for a
# human-chosen bootstrap key.
PREFIX_LENGTH = 8

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer kz_…`")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id and role, and for a participant token, the person."""

    key_id: str
    role: Role
    person_external_id: str | None = None


async def create_key(
    session: AsyncSession,
    *,
    name: str,
    role: Role,
    secret: str | None = None,
    person_external_id: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Store a new key and return it with its secret (the only time the secret exists)."""
    secret = secret or new_secret()
    key = ApiKey(
        id=str(uuid.uuid4()),
        name=name,
        role=role,
        secret_hash=hash_secret(secret),
        prefix=secret[:PREFIX_LENGTH],
        person_external_id=person_external_id,
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    return key, secret


async def revoke_key(session: AsyncSession, key_id: str) -> bool:
    """Revoke an active API key (not a participant token). False when there is none to revoke."""
    key = await session.get(ApiKey, key_id)
    if key is None or key.role == "participant" or key.revoked_at is not None:
        return False
    key.revoked_at = utcnow()
    return True


# Columns only, no ORM identity map: this runs on every request.
_KEY_LOOKUP = select(
    ApiKey.id, ApiKey.role, ApiKey.person_external_id, ApiKey.revoked_at, ApiKey.expires_at
).where(ApiKey.secret_hash == bindparam("digest"))


async def authenticate(session: AsyncSession, secret: str) -> Principal | None:
    digest = hash_secret(secret)
    key = (await session.execute(_KEY_LOOKUP, {"digest": digest})).first()
    if key is None or key.revoked_at is not None:
        return None
    if key.expires_at is not None and key.expires_at <= utcnow():
        return None
    return Principal(key_id=key.id, role=key.role, person_external_id=key.person_external_id)


async def current_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized()
    principal = await authenticate(session, credentials.credentials)
    if principal is None:
        raise Unauthorized("The API key is unknown, revoked or expired.")
    request.state.principal = principal
    return principal


def require_role(*roles: Role):  # type: ignore[no-untyped-def]
    """A dependency that lets only the given roles through (403 for any other valid key)."""

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"This operation needs one of the roles: {', '.join(roles)}.")
        return principal

    dependency.allowed_roles = roles  # type: ignore[attr-defined]  # read by the authorization-matrix test
    return dependency


AdminKey = Annotated[Principal, Depends(require_role("admin"))]
PeopleWriter = Annotated[Principal, Depends(require_role("admin", "hris"))]
PeopleReader = Annotated[Principal, Depends(require_role("admin", "hris"))]
PairingReader = Annotated[Principal, Depends(require_role("admin", "integration", "participant"))]
TokenIssuer = Annotated[Principal, Depends(require_role("admin", "integration"))]
ParticipantKey = Annotated[Principal, Depends(require_role("participant"))]
