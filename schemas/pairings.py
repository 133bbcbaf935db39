"""Published pairings as integrations and participants see them, and participant tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class ProgramRef(BaseModel):
    id: int
    name: str


class Counterpart(BaseModel):
    external_id: str
    display_name: str | None
    email: str | None
    title: str | None
    department: str | None
    time_zone: str | None
    erased: bool = Field(default=False, description="True when the person's personal data was erased.")


class OverlapWindow(BaseModel):
    start_utc: datetime
    end_utc: datetime


class Overlap(BaseModel):
    hours: float
    windows: list[OverlapWindow] = Field(description="Shared working hours on the round's date, in UTC.")


class PairingOut(BaseModel):
    id: int
    program: ProgramRef
    role: Literal["mentor", "mentee"] = Field(description="The role of the person asked about.")
    counterpart: Counterpart
    score: float
    components: dict[str, float]
    reasons: list[str]
    overlap: Overlap
    status: Literal["active", "ended"]
    published_at: datetime


class ParticipantToken(BaseModel):
    token: str = Field(description="A bearer token for GET /v1/me/pairings; shown only in this answer.")
    expires_at: datetime
