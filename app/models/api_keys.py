from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, String
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, utcnow


class ApiKey(SQLModel, table=True):
    """An API key or a participant token. Only the SHA-256 of the secret is stored."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_role_active", "role", "revoked_at"),)

    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    role: str = Field(max_length=20)  # admin | hris | integration | participant
    secret_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    prefix: str = Field(max_length=16)  # first characters of the secret, to recognise a key in lists
    # Participant tokens are bound to one person and expire.
    person_external_id: str | None = Field(default=None, max_length=255)
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
