"""Programs and enrolments: what an admin sends and what the API answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from schemas.common import StrictInput, description_field
from schemas.people import BatchResult, ExternalId, Text

Relationship = Literal["traditional", "reverse", "peer"]
Objective = Literal["coverage_first", "score_first"]
CrossFunctional = Literal["prefer", "require", "ignore"]
EnrollmentRole = Literal["mentor", "mentee", "both"]

MAX_ENROLLMENT_BATCH = 1000
MAX_BLOCKED = 1000
MAX_PREFERRED = 100
MAX_CAPACITY = 50
PEER_LEVEL_GAP = (0, 1)  # peers sit within ±1 level unless the program says otherwise


class Weights(StrictInput):
    """Relative weights of the score components; they are normalised, so only ratios matter."""

    goals: float = Field(default=0.4, ge=0, le=1000)
    time_zone: float = Field(default=0.2, ge=0, le=1000)
    seniority: float = Field(default=0.2, ge=0, le=1000)
    cross_functional: float = Field(default=0.2, ge=0, le=1000)

    @model_validator(mode="after")
    def _not_all_zero(self) -> Weights:
        if self.goals + self.time_zone + self.seniority + self.cross_functional <= 0:
            raise ValueError("at least one weight must be above zero")
        return self


class Rules(StrictInput):
    """Hard rules and thresholds. Level gaps are mentor level − mentee level for traditional
    programs, mentee − mentor for reverse ones, and |difference| for peers."""

    level_gap_min: int = Field(default=1, ge=0, le=19)
    level_gap_max: int = Field(default=4, ge=0, le=19)
    min_overlap_hours: float = Field(default=2.0, ge=0, le=24)
    exclude_management_chain: bool = True
    cross_functional: CrossFunctional = "prefer"
    min_cross_functional_share: float | None = Field(default=None, ge=0, le=1)
    require_common_language: bool = True
    avoid_repeat_pairs: bool = True
    min_score: float = Field(default=0.0, ge=0, le=1)
    default_mentor_capacity: int = Field(default=2, ge=1, le=MAX_CAPACITY)
    min_department_match_rate: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _gap_bounds(self) -> Rules:
        if self.level_gap_min > self.level_gap_max:
            raise ValueError(f"level_gap_min ({self.level_gap_min}) is above level_gap_max ({self.level_gap_max})")
        return self


Description = description_field(2000)


class ProgramCreate(StrictInput):
    name: Text
    description: Description | None = None
    relationship: Relationship = "traditional"
    objective: Objective = "coverage_first"
    weights: Weights = Field(default_factory=Weights)
    rules: Rules = Field(
        default_factory=Rules,
        description="Any subset of the rules; the rest take their defaults (peer programs: level gap 0–1).",
    )


class ProgramPatch(StrictInput):
    """Any subset; ``weights`` and ``rules`` are merged into the stored ones and validated whole.
    A round already triggered keeps the rules it was triggered with."""

    name: Text | None = None
    description: Description | None = None
    relationship: Relationship | None = None
    objective: Objective | None = None
    weights: dict[str, Any] | None = Field(default=None, description="Any subset of the Weights fields.")
    rules: dict[str, Any] | None = Field(default=None, description="Any subset of the Rules fields.")


class ProgramOut(BaseModel):
    id: int
    name: str
    description: str | None
    relationship: Relationship
    objective: Objective
    weights: Weights
    rules: Rules
    created_at: datetime
    updated_at: datetime


class EnrollmentFields(StrictInput):
    role: EnrollmentRole
    capacity: int | None = Field(
        default=None,
        ge=0,
        le=MAX_CAPACITY,
        description="Mentees this person mentors at once in this program (mentor/both only); "
        "defaults to the program's default_mentor_capacity.",
    )
    blocked: list[ExternalId] = Field(default_factory=list, max_length=MAX_BLOCKED)
    preferred: list[ExternalId] = Field(default_factory=list, max_length=MAX_PREFERRED)

    @model_validator(mode="after")
    def _consistent(self) -> EnrollmentFields:
        if self.role == "mentee" and self.capacity is not None:
            raise ValueError("capacity applies to mentors; a mentee-only enrolment has none")
        self.blocked = sorted(set(self.blocked))
        self.preferred = sorted(set(self.preferred))
        clash = set(self.blocked) & set(self.preferred)
        if clash:
            raise ValueError(f"both blocked and preferred: {', '.join(sorted(clash))}")
        return self


class EnrollmentPut(EnrollmentFields):
    pass


class EnrollmentBatchItem(EnrollmentFields):
    external_id: ExternalId


class EnrollmentBatch(StrictInput):
    # Validated item by item (one bad item spoils none); the item schema is EnrollmentBatchItem.
    enrollments: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_ENROLLMENT_BATCH,
        json_schema_extra={"items": {"$ref": "#/components/schemas/EnrollmentBatchItem"}},
    )


class EnrollmentOut(BaseModel):
    external_id: str
    display_name: str | None
    role: EnrollmentRole
    capacity: int | None
    blocked: list[str]
    preferred: list[str]
    active: bool = Field(description="False when the person is inactive or erased: rounds leave them out.")
    created_at: datetime
    updated_at: datetime


class EnrollmentBatchResult(BatchResult):
    pass
