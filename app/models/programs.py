"""Programs and their enrolments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, utcnow

# Integer keys on SQLite are ROWID aliases only when declared INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Program(SQLModel, table=True):
    """A mentoring program: relationship type, objective, score weights and hard rules.
    A round copies ``relationship``/``objective``/``weights``/``rules`` when it is triggered."""

    __tablename__ = "programs"

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    relationship: str = Field(max_length=20)  # traditional | reverse | peer
    objective: str = Field(max_length=20)  # coverage_first | score_first
    weights: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    rules: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class Enrollment(SQLModel, table=True):
    """A person's place in a program. ``blocked``/``preferred`` hold external ids, so they may
    name people the HRIS has not pushed yet."""

    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("program_id", "person_id", name="uq_enrollments_program_person"),
        Index("ix_enrollments_person", "person_id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    program_id: int = Field(
        sa_column=Column(BigId, ForeignKey("programs.id", ondelete="CASCADE"), nullable=False)
    )
    person_id: int = Field(sa_column=Column(BigId, ForeignKey("people.id", ondelete="CASCADE"), nullable=False))
    role: str = Field(sa_column=Column(String(10), nullable=False))  # mentor | mentee | both
    capacity: int | None = None  # concurrent mentees as a mentor; None = the program's default
    blocked: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    preferred: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
