"""Every row of every table, to prove that a refused request stored or changed nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.db import session_scope
from app.models import metadata

Snapshot = dict[str, list[tuple[Any, ...]]]


async def snapshot(app: Any) -> Snapshot:
    """All rows of all tables, each table in primary-key order (reprs, so JSON and datetimes compare)."""
    tables: Snapshot = {}
    async with session_scope(app.state.sessionmaker, write=False) as session:
        for table in metadata.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            rows = (await session.execute(select(table).order_by(*order))).all()
            tables[table.name] = [tuple(repr(value) for value in row) for row in rows]
    return tables


def differences(before: Snapshot, after: Snapshot) -> dict[str, dict[str, int]]:
    """Per changed table: how many rows appeared and disappeared (empty when nothing changed)."""
    changed: dict[str, dict[str, int]] = {}
    for name in sorted(set(before) | set(after)):
        old, new = set(before.get(name, [])), set(after.get(name, []))
        if old != new:
            changed[name] = {"added_or_changed": len(new - old), "removed_or_changed": len(old - new)}
    return changed
