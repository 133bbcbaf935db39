from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, utcnow


class Person(SQLModel, table=True):
    """An employee profile as pushed by the HRIS. ``erased_at`` marks a tombstone whose
    personal data has been removed; the row stays so references resolve to "erased"."""

    __tablename__ = "people"
    __table_args__ = (
        Index("ix_people_department", "department"),
        Index("ix_people_manager", "manager_external_id"),
        Index("ix_people_updated_at", "updated_at"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    )
    external_id: str = Field(sa_column=Column(String(255), nullable=False, unique=True))
    display_name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    title: str | None = Field(default=None, max_length=200)
    department: str | None = Field(default=None, max_length=200)
    division: str | None = Field(default=None, max_length=200)
    level: int
    manager_external_id: str | None = Field(default=None, max_length=255)
    time_zone: str = Field(max_length=64)
    work_start: str = Field(max_length=5)  # HH:MM local time
    work_end: str = Field(max_length=5)
    crosses_midnight: bool = False
    languages: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    skills: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    goals: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True
    content_hash: str = Field(max_length=64)  # of the canonical profile, to answer "unchanged"
    erased_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
