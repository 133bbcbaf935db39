from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from schemas.common import StrictInput


class ApiKeyCreate(StrictInput):
    name: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "hris", "integration"]


class ApiKeyOut(BaseModel):
    id: str
    name: str
    role: str
    prefix: str = Field(description="The first characters of the secret, to recognise the key.")
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="The key itself. Shown only in this answer; store it now.")
