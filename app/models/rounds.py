"""Matching rounds (durable jobs), their results, and the pairings published from them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Date, Float, ForeignKey, Index, Integer, String, text
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, utcnow
from app.models.programs import BigId

# A round's life: queued → running → completed | failed; completed → published | discarded.
# queued/running/completed can also be discarded by an admin.
ACTIVE_ROUND_STATUSES = ("queued", "running")
_ACTIVE_ROUND = text("status IN ('queued', 'running')")


class Round(SQLModel, table=True):
    __tablename__ = "rounds"
    __table_args__ = (
        # At most one queued or running round per program, enforced by the database so two
        # concurrent triggers cannot both get through (SQLite and PostgreSQL both have partial indexes).
        Index(
            "uq_rounds_one_active_per_program",
            "program_id",
            unique=True,
            sqlite_where=_ACTIVE_ROUND,
            postgresql_where=_ACTIVE_ROUND,
        ),
        Index("uq_rounds_idempotency", "program_id", "idempotency_key", unique=True),
        Index("ix_rounds_status_created", "status", "created_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    program_id: int = Field(
        sa_column=Column(BigId, ForeignKey("programs.id", ondelete="CASCADE"), nullable=False)
    )
    status: str = Field(sa_column=Column(String(20), nullable=False))
    round_date: date = Field(sa_column=Column(Date(), nullable=False))
    # The program's relationship, objective, weights and rules when the round was triggered.
    program_snapshot: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    pins: list[list[str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    blocks: list[list[str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    idempotency_key: str | None = Field(default=None, max_length=255)
    request_hash: str = Field(max_length=64)
    # Runner bookkeeping: who holds the round and until when; the token fences late writers.
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    lease_owner: str | None = Field(default=None, max_length=200)
    lease_token: str | None = Field(default=None, max_length=36)
    lease_expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    stats: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    solver: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    timings: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    published_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    discarded_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class RoundMatch(SQLModel, table=True):
    __tablename__ = "round_matches"
    __table_args__ = (
        # A mentee has one mentor per round: a second result set for a round cannot be stored.
        Index("uq_round_matches_mentee", "round_id", "mentee_person_id", unique=True),
        Index("ix_round_matches_mentor", "mentor_person_id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    round_id: int = Field(sa_column=Column(BigId, ForeignKey("rounds.id", ondelete="CASCADE"), nullable=False))
    mentor_person_id: int = Field(sa_column=Column(BigId, ForeignKey("people.id"), nullable=False))
    mentee_person_id: int = Field(sa_column=Column(BigId, ForeignKey("people.id"), nullable=False))
    score: float = Field(sa_column=Column(Float, nullable=False))
    components: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    overlap_hours: float = Field(sa_column=Column(Float, nullable=False))
    # [[start_utc, end_utc], ...] as ISO 8601 strings, on the round's date.
    overlap_windows: list[list[str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    pinned: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))


class RoundUnmatched(SQLModel, table=True):
    __tablename__ = "round_unmatched"
    __table_args__ = (Index("uq_round_unmatched_person", "round_id", "person_id", "role", unique=True),)

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    round_id: int = Field(sa_column=Column(BigId, ForeignKey("rounds.id", ondelete="CASCADE"), nullable=False))
    person_id: int = Field(sa_column=Column(BigId, ForeignKey("people.id"), nullable=False))
    role: str = Field(sa_column=Column(String(10), nullable=False))
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    rule_counts: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Pairing(SQLModel, table=True):
    """A published match. Score, reasons and overlap stay on the match row it came from."""

    __tablename__ = "pairings"
    __table_args__ = (
        Index("ix_pairings_mentor", "mentor_person_id", "status"),
        Index("ix_pairings_mentee", "mentee_person_id", "status"),
        Index("ix_pairings_program", "program_id", "status"),
        # A mentee has at most one active pairing per program.
        Index(
            "uq_pairings_active_mentee",
            "program_id",
            "mentee_person_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    program_id: int = Field(
        sa_column=Column(BigId, ForeignKey("programs.id", ondelete="CASCADE"), nullable=False)
    )
    round_id: int = Field(sa_column=Column(BigId, ForeignKey("rounds.id", ondelete="CASCADE"), nullable=False))
    match_id: int = Field(
        sa_column=Column(BigId, ForeignKey("round_matches.id", ondelete="CASCADE"), nullable=False, unique=True)
    )
    mentor_person_id: int = Field(sa_column=Column(BigId, ForeignKey("people.id"), nullable=False))
    mentee_person_id: int = Field(sa_column=Column(BigId, ForeignKey("people.id"), nullable=False))
    status: str = Field(sa_column=Column(String(10), nullable=False))  # active | ended
    published_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
