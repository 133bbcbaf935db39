"""Shapes shared by every resource: pages, problems, the strict input base."""

from __future__ import annotations

import re
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

# External ids come from HRIS and identity systems: employee numbers, e-mail-like ids, UUIDs.
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@:+\-]{0,254}$"


# Multi-line free text may hold tabs and line breaks, never other control characters (PostgreSQL
# refuses NUL outright) or bidirectional overrides (they disguise text).
_UNSAFE_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _safe_multiline(value: str | None) -> str | None:
    if value is not None and _UNSAFE_IN_TEXT.search(value):
        raise ValueError("control characters and bidirectional overrides are not allowed")
    return value


def description_field(max_length: int) -> type[str]:
    """A free-text description: line breaks allowed, control characters not."""
    return Annotated[str, Field(max_length=max_length), AfterValidator(_safe_multiline)]  # type: ignore[return-value]


class StrictInput(BaseModel):
    """Base of every request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
