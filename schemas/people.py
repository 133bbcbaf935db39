"""People: the profile an HRIS pushes, and what the API answers.

Normalisation happens here, once: skill names are lower-cased with single spaces and
de-duplicated (the highest proficiency wins), goals likewise (the most important
priority wins), languages are lower-case ISO 639-1 codes without repeats.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Self
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, Field, ValidationInfo, field_validator, model_validator

from schemas.common import EXTERNAL_ID_PATTERN, StrictInput
from schemas.languages import ISO_639_1

MAX_SKILLS = 100
MAX_GOALS = 20
MAX_LANGUAGES = 20
MAX_BATCH = 1000

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SPACES = re.compile(r"\s+")
# C0/C1 controls; line and paragraph separators (a line break inside a one-line field);
# bidirectional embeddings, overrides and isolates (they make "Ana\u202egnp.exe" render as
# "Anaexe.png" in HR tools: a spoofing vector); non-characters. Zero-width joiners stay
# allowed: emoji sequences and Indic and Persian scripts need them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufdd0-\ufdef\ufffe\uffff]")
# Characters that take no space: a value made only of them (and spaces) is blank.
_INVISIBLE = re.compile(r"[\s\u200b-\u200d\u2060\ufeff]")


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def normalise_skill_name(name: str) -> str:
    return _SPACES.sub(" ", name.strip()).casefold()


def _valid_time_zone(value: str) -> str:
    if value not in _time_zones():
        raise ValueError(f"unknown IANA time zone {value!r} (e.g. 'Europe/Berlin', 'Asia/Tokyo')")
    return value


def _valid_email(value: str | None) -> str | None:
    if value is not None and (not _EMAIL.match(value) or _CONTROL.search(value)):
        raise ValueError("not an e-mail address")
    return value


def _no_control_characters(value: str | None) -> str | None:
    if value is not None and _CONTROL.search(value):
        raise ValueError("control, line-separator, bidirectional-override and non-characters are not allowed")
    if value is not None and not _INVISIBLE.sub("", value):
        raise ValueError("must contain a visible character")
    return value


ExternalId = Annotated[str, Field(pattern=EXTERNAL_ID_PATTERN, max_length=255)]
TimeZone = Annotated[str, Field(max_length=64, examples=["Asia/Singapore"]), AfterValidator(_valid_time_zone)]
Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_control_characters)]
Email = Annotated[str, Field(max_length=320), AfterValidator(_valid_email)]
Level = Annotated[int, Field(ge=1, le=20, strict=True)]


class WorkingHours(StrictInput):
    """Local working window. ``end`` must be after ``start``, unless ``crosses_midnight`` says
    the shift ends the next day (e.g. 22:00–06:00)."""

    start: str = Field(examples=["09:00"], description="HH:MM, 24-hour local time")
    end: str = Field(examples=["17:00"], description="HH:MM, 24-hour local time")
    crosses_midnight: bool = False

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("must be HH:MM in 24-hour time, e.g. 09:30")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> WorkingHours:
        if self.start == self.end:
            raise ValueError("start and end are equal: a working window needs a length")
        if self.crosses_midnight and self.end > self.start:
            raise ValueError("crosses_midnight is true but end is after start")
        if not self.crosses_midnight and self.end < self.start:
            raise ValueError("end is before start; set crosses_midnight=true for a shift that ends the next day")
        return self


class SkillIn(StrictInput):
    name: Text
    level: int = Field(ge=1, le=5, strict=True, description="Proficiency 1 (basic) to 5 (expert)")


class GoalIn(StrictInput):
    skill: Text
    priority: int = Field(default=2, ge=1, le=3, strict=True, description="1 = most important")


class PersonFields(StrictInput):
    """Profile fields shared by create/replace (PUT) and batch items."""

    display_name: Text
    email: Email | None = None
    title: Text | None = None
    department: Text | None = None
    division: Text | None = None
    level: Level
    manager_external_id: ExternalId | None = None
    time_zone: TimeZone
    working_hours: WorkingHours = Field(default_factory=lambda: WorkingHours(start="09:00", end="17:00"))
    languages: list[str] = Field(default_factory=list, max_length=MAX_LANGUAGES)
    skills: list[SkillIn] = Field(default_factory=list, max_length=MAX_SKILLS)
    goals: list[GoalIn] = Field(default_factory=list, max_length=MAX_GOALS)
    active: bool = True

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        seen: dict[str, None] = {}
        for code in value:
            norm = code.strip().lower()
            if norm not in ISO_639_1:
                raise ValueError(f"{code!r} is not an ISO 639-1 language code (e.g. 'en', 'ja')")
            seen[norm] = None
        return list(seen)

    @field_validator("skills", "goals", mode="before")
    @classmethod
    def _normalise_names(cls, value: Any, info: ValidationInfo) -> Any:
        # Normalise names before the items are built, so de-duplication below can keep the
        # validated objects as they are (building new ones costs more than validating).
        key = "name" if info.field_name == "skills" else "skill"
        if not isinstance(value, list):
            return value
        return [
            {**item, key: normalise_skill_name(item[key])}
            # A name with unsafe characters is left as sent, for validation to refuse
            # (normalising first would turn a line separator into a harmless space).
            if isinstance(item, dict) and isinstance(item.get(key), str) and not _CONTROL.search(item[key])
            else item
            for item in value
        ]

    @field_validator("skills")
    @classmethod
    def _skills(cls, value: list[SkillIn]) -> list[SkillIn]:
        best: dict[str, SkillIn] = {}
        for skill in value:  # a skill listed twice counts at its best level
            if skill.name not in best or skill.level > best[skill.name].level:
                best[skill.name] = skill
        return list(best.values())

    @field_validator("goals")
    @classmethod
    def _goals(cls, value: list[GoalIn]) -> list[GoalIn]:
        best: dict[str, GoalIn] = {}
        for goal in value:  # a goal listed twice counts at its most important priority
            if goal.skill not in best or goal.priority < best[goal.skill].priority:
                best[goal.skill] = goal
        return list(best.values())


class PersonPut(PersonFields):
    pass


class PersonBatchItem(PersonFields):
    external_id: ExternalId


class PersonPatch(StrictInput):
    """Any subset of the profile fields; the merged profile is validated as a whole."""

    display_name: Text | None = None
    email: Email | None = None
    title: Text | None = None
    department: Text | None = None
    division: Text | None = None
    level: Level | None = None
    manager_external_id: ExternalId | None = None
    time_zone: TimeZone | None = None
    working_hours: WorkingHours | None = None
    languages: list[str] | None = Field(default=None, max_length=MAX_LANGUAGES)
    skills: list[SkillIn] | None = Field(default=None, max_length=MAX_SKILLS)
    goals: list[GoalIn] | None = Field(default=None, max_length=MAX_GOALS)
    active: bool | None = None


class PeopleBatch(StrictInput):
    # Items are validated one by one so that one bad item never spoils the others;
    # their schema is PersonBatchItem (see the OpenAPI document).
    people: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        json_schema_extra={"items": {"$ref": "#/components/schemas/PersonBatchItem"}},
    )


class SkillOut(BaseModel):
    name: str
    level: int


class GoalOut(BaseModel):
    skill: str
    priority: int


class WorkingHoursOut(BaseModel):
    start: str
    end: str
    crosses_midnight: bool


class PersonOut(BaseModel):
    external_id: str
    display_name: str | None
    email: str | None
    title: str | None
    department: str | None
    division: str | None
    level: int
    manager_external_id: str | None
    time_zone: str
    working_hours: WorkingHoursOut
    languages: list[str]
    skills: list[SkillOut]
    goals: list[GoalOut]
    active: bool
    created_at: datetime
    updated_at: datetime


class BatchItemResult(BaseModel):
    external_id: str | None
    status: str = Field(description="created | updated | unchanged | error")
    error: str | None = None


class BatchResult(BaseModel):
    """Per-item results of a batch, with the count of each status."""

    results: list[BatchItemResult]
    created: int
    updated: int
    unchanged: int
    errors: int

    @classmethod
    def of(cls, results: list[BatchItemResult]) -> Self:
        counts = {"created": 0, "updated": 0, "unchanged": 0, "error": 0}
        for result in results:
            counts[result.status] += 1
        return cls(
            results=results,
            created=counts["created"],
            updated=counts["updated"],
            unchanged=counts["unchanged"],
            errors=counts["error"],
        )


class PeopleBatchResult(BatchResult):
    pass
