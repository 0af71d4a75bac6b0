"""Test databases: a fresh SQLite file or a fresh PostgreSQL database, built by Alembic."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def need(reason: str) -> None:
    """Skip outside CI; in CI a missing prerequisite is a failure, never a skip."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def pg_admin_url() -> str:
    url = os.environ.get("PIESTUDY_TEST_DATABASE_URL", "")
    return (
        url
        if url.startswith("postgresql")
        else os.environ.get("PIESTUDY_TEST_PG_URL", DEFAULT_PG_URL)
    )


def postgres_available(url: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


@contextmanager
def fresh_postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty database beside admin_url's, dropped afterwards."""
    name = f"piestudy_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_database(tmp_dir: Path, kind: str) -> Iterator[str]:
    if kind == "postgresql":
        url = pg_admin_url()
        if not postgres_available(url):
            need(f"PostgreSQL is not reachable at {url}")
        with fresh_postgres_database(url) as fresh:
            yield fresh
    else:
        yield f"sqlite:///{tmp_dir / f'piestudy-{uuid.uuid4().hex[:8]}.db'}"


def selected_backend() -> str:
    url = os.environ.get("PIESTUDY_TEST_DATABASE_URL", "")
    return "postgresql" if url.startswith("postgresql") else "sqlite"
