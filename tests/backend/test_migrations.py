"""The schema comes from Alembic alone: models and migrations agree, and downgrade works."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from backend import migrate
from backend.db import Base, make_engine
from tests.dbutil import fresh_database, selected_backend

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database


def _diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_models_and_migrations_agree(database_url: str) -> None:
    assert _diff(database_url) == []


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    with fresh_database(tmp_path, selected_backend()) as url:
        migrate.upgrade(url)
        assert {t.name for t in Base.metadata.sorted_tables} <= _tables(url)
        migrate.downgrade(url, "base")
        assert _tables(url) <= {"alembic_version"}
        migrate.upgrade(url)
        assert _diff(url) == []
