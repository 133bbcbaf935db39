"""Alembic builds exactly the models' schema, and takes it away again."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from app.migrations import downgrade, head_revision, sync_url, upgrade
from app.models import metadata


def _diff(url: str) -> list[object]:
    engine = create_engine(sync_url(url))
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    engine.dispose()
    return diff


def _tables(url: str) -> set[str]:
    engine = create_engine(sync_url(url))
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    return tables


def test_migrated_schema_equals_the_models(database_url: str) -> None:
    assert _diff(database_url) == []


def test_downgrade_base_removes_everything_and_upgrade_restores_it(database_url: str) -> None:
    try:
        downgrade(database_url, "base")
        assert _tables(database_url) <= {"alembic_version"}
    finally:
        upgrade(database_url, "head")
    assert _diff(database_url) == []
    assert set(metadata.tables) <= _tables(database_url)
    assert head_revision() is not None
