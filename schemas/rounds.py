"""Matching rounds: the trigger, the round, its matches and the people left unmatched."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from schemas.common import StrictInput
from schemas.people import ExternalId
from schemas.programs import Objective, Relationship, Rules, Weights

RoundStatus = Literal["queued", "running", "completed", "failed", "published", "discarded"]
MAX_PINS = 1000
MAX_BLOCKS = 10_000
MAX_ROUND_DATE_DISTANCE_DAYS = 366


class PairRef(StrictInput):
    mentor: ExternalId
    mentee: ExternalId


class RoundCreate(StrictInput):
    pins: list[PairRef] = Field(
        default_factory=list, max_length=MAX_PINS, description="Pairs the round must contain."
    )
    blocks: list[PairRef] = Field(
        default_factory=list, max_length=MAX_BLOCKS, description="Pairs the round must not contain."
    )
    round_date: date | None = Field(
        default=None,
        description="The date shared working hours are computed for (DST matters); defaults to today (UTC).",
    )

    @field_validator("round_date")
    @classmethod
    def _near_today(cls, value: date | None) -> date | None:
        # Working hours are compared on this date (DST rules); far dates are typos, and the
        # extremes of the calendar cannot hold the day before and after.
        if value is not None and abs((value - date.today()).days) > MAX_ROUND_DATE_DISTANCE_DAYS:
            raise ValueError(f"must be within {MAX_ROUND_DATE_DISTANCE_DAYS} days of today")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RoundCreate:
        pinned = [(p.mentor, p.mentee) for p in self.pins]
        blocked = {(b.mentor, b.mentee) for b in self.blocks}
        both = sorted(set(pinned) & blocked)
        if both:
            raise ValueError(f"pinned and blocked at once: {both[0][0]} → {both[0][1]}")
        mentees = [mentee for _, mentee in pinned]
        repeated = sorted({m for m in mentees if mentees.count(m) > 1})
        if repeated:
            raise ValueError(f"a mentee can be pinned to one mentor only: {', '.join(repeated)}")
        return self


class ProgramSnapshotOut(BaseModel):
    relationship: Relationship
    objective: Objective
    weights: Weights
    rules: Rules


class RoundStats(BaseModel):
    mentees: int = 0
    mentors: int = 0
    matched_mentees: int = 0
    coverage: float = 0.0
    mean_score: float = 0.0
    cross_functional_share: float = 0.0
    mean_overlap_hours: float = 0.0


class SolverOut(BaseModel):
    status: Literal["optimal", "feasible", "infeasible"]
    objective: float
    bound: float
    seconds: float
    gap: float = 0.0


class RoundOut(BaseModel):
    id: int
    program_id: int
    status: RoundStatus
    round_date: date
    program: ProgramSnapshotOut = Field(description="The program's settings when the round was triggered.")
    pins: list[PairRef]
    blocks: list[PairRef]
    stats: RoundStats | None = None
    solver: SolverOut | None = None
    timings: dict[str, float] | None = Field(default=None, description="Seconds spent loading, solving, storing.")
    error: dict[str, Any] | None = Field(default=None, description="A problem+json object when the round failed.")
    attempts: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    published_at: datetime | None = None
    discarded_at: datetime | None = None


class PersonSummary(BaseModel):
    external_id: str
    display_name: str | None
    department: str | None
    level: int
    time_zone: str | None


class MatchOut(BaseModel):
    id: int
    mentor: PersonSummary
    mentee: PersonSummary
    score: float = Field(ge=0, le=1)
    components: dict[str, float]
    reasons: list[str]
    overlap_hours: float
    pinned: bool


class UnmatchedOut(BaseModel):
    external_id: str
    role: str
    reasons: list[str]
    rule_counts: dict[str, int]
