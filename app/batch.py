"""Per-item validation for batch endpoints (people, enrolments): each item is validated on its
own so one bad item never spoils the others, and an id repeated in one batch is an error."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from schemas.people import BatchItemResult

Item = TypeVar("Item", bound=BaseModel)


def first_error(exc: ValidationError) -> str:
    """The first few validation errors as one readable line."""
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return "; ".join(parts)


class BatchValidation(Generic[Item]):
    """``results[i]`` is set for every refused item; ``valid`` maps external id -> (index, item)."""

    def __init__(self, raw_items: Sequence[Any], model: type[Item]) -> None:
        self.results: list[BatchItemResult | None] = [None] * len(raw_items)
        self.valid: dict[str, tuple[int, Item]] = {}
        for index, raw in enumerate(raw_items):
            try:
                item = raw if isinstance(raw, model) else model.model_validate(raw)
            except ValidationError as exc:
                external_id = raw.get("external_id") if isinstance(raw, dict) else None
                self.refuse(index, external_id if isinstance(external_id, str) else None, first_error(exc))
                continue
            external_id = item.external_id  # type: ignore[attr-defined]
            if external_id in self.valid:
                self.refuse(index, external_id, f"duplicate of item {self.valid[external_id][0]} in this batch")
                continue
            self.valid[external_id] = (index, item)

    def refuse(self, index: int, external_id: str | None, error: str) -> None:
        self.results[index] = BatchItemResult(external_id=external_id, status="error", error=error)

    def reject(self, external_id: str, error: str) -> None:
        """Take a valid item out again (a later check failed) and record why."""
        index, _ = self.valid.pop(external_id)
        self.refuse(index, external_id, error)

    def set(self, external_id: str, status: str) -> None:
        self.results[self.valid[external_id][0]] = BatchItemResult(external_id=external_id, status=status)

    def outcome(self) -> list[BatchItemResult]:
        return [result for result in self.results if result is not None]
