"""API keys and roles.

Secrets are ``kz_`` + 43 URL-safe random characters (256 bits). Only their SHA-256 is
stored: a fast hash is right for high-entropy random tokens (no dictionary to guess
from), and it lets a key be found by an indexed equality lookup.

A key that authenticated is remembered by its hash in a small per-process cache for
``KIZUNA_AUTH_CACHE_SECONDS`` (default 5), so a busy integration does not cost a key lookup
per request. What that cache may and may not do:

- only keys that authenticated are kept (an unknown or revoked key is looked up every time,
  so guessing cannot fill the cache), never beyond the key's own ``expires_at``;
- a revocation committed by *this* process (``DELETE /v1/api-keys/{id}``, erasing a person,
  which revokes their participant tokens) empties the cache as soon as it commits, before
  the answer is sent: the next request here is refused;
- a revocation committed by *another* process (another uvicorn worker or replica, or
  ``kizuna keys revoke``) is seen here after at most ``KIZUNA_AUTH_CACHE_SECONDS``: that is
  the bound on how long a revoked key keeps working elsewhere. ``0`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.db import on_commit
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
    keys_revoked(session)
    return True


# -- the principal cache ------------------------------------------------------------------------

# Every cache of this process (one per app; tests run several apps in one process).
_caches: weakref.WeakSet[PrincipalCache] = weakref.WeakSet()


def keys_revoked(session: AsyncSession | Session) -> None:
    """Note that this unit of work revokes keys: when it commits, every principal cache of this
    process is emptied. Call it wherever ``revoked_at`` is set."""
    on_commit(session, "kizuna_keys_revoked", _clear_caches)


def _clear_caches() -> None:
    # After COMMIT has returned: a lookup that starts from here on sees the revocation, and
    # one that started before cannot store its result (see PrincipalCache.generation).
    for cache in list(_caches):
        cache.clear()


class PrincipalCache:
    """Keys that authenticated recently, by secret hash, each for at most ``ttl_seconds`` and
    never past the key's expiry. Bounded: when full, the oldest entry makes room."""

    def __init__(
        self, ttl_seconds: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[str, tuple[Principal, float]] = {}
        # Bumped by clear(): a lookup that read the database before a clear() must not store
        # what it read (the row may have been revoked in between).
        self.generation = 0
        _caches.add(self)

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    def get(self, digest: str) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        principal, valid_until = entry
        if self.clock() >= valid_until:
            self._entries.pop(digest, None)
            return None
        return principal

    def put(self, digest: str, principal: Principal, expires_at: datetime | None, generation: int) -> None:
        if generation != self.generation or not self.enabled:
            return
        lifetime = self.ttl_seconds
        if expires_at is not None:
            lifetime = min(lifetime, (expires_at - utcnow()).total_seconds())
            if lifetime <= 0:
                return
        if digest not in self._entries and len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[digest] = (principal, self.clock() + lifetime)

    def clear(self) -> None:
        self._entries.clear()
        self.generation += 1


# Columns only, no ORM identity map: this runs on every request.
_KEY_LOOKUP = select(
    ApiKey.id, ApiKey.role, ApiKey.person_external_id, ApiKey.revoked_at, ApiKey.expires_at
).where(ApiKey.secret_hash == bindparam("digest"))


async def authenticate(session: AsyncSession, secret: str, cache: PrincipalCache | None = None) -> Principal | None:
    digest = hash_secret(secret)
    if cache is not None:
        cached = cache.get(digest)
        if cached is not None:
            return cached
        generation = cache.generation
    key = (await session.execute(_KEY_LOOKUP, {"digest": digest})).first()
    if key is None or key.revoked_at is not None:
        return None
    if key.expires_at is not None and key.expires_at <= utcnow():
        return None
    principal = Principal(key_id=key.id, role=key.role, person_external_id=key.person_external_id)
    if cache is not None:
        cache.put(digest, principal, key.expires_at, generation)
    return principal


async def current_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized()
    principal = await authenticate(session, credentials.credentials, request.app.state.principal_cache)
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
