"""Pooled PostgreSQL connections that the server has closed are replaced before a request uses
them (backend.db checks the idle socket at checkout instead of a SELECT 1 pre-ping); the pools'
slots; and SQLite's writers in several server processes take turns (backend.db.writer_turn)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from backend.db import make_engine, write_lock_file, writer_turn
from tests.dbutil import need, pg_admin_url, postgres_available


@pytest.mark.postgres
def test_a_pooled_connection_the_server_closed_is_replaced_before_use() -> None:
    url = pg_admin_url()
    if not postgres_available(url):
        need(f"PostgreSQL is not reachable at {url}")
    engine = make_engine(url)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            pid = c.scalar(text("SELECT pg_backend_pid()"))
        # idle in the pool now; the server ends it, as a restart or an administrator would
        with admin.connect() as a:
            assert a.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + 10
            gone = "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid"
            while not a.scalar(text(gone), {"pid": pid}):
                assert time.monotonic() < deadline, "the terminated backend did not exit"
                time.sleep(0.05)
        for _ in range(3):  # the first checkout replaces it; the new one is healthy and reused
            with engine.connect() as c:
                assert c.scalar(text("SELECT pg_backend_pid()")) != pid
    finally:
        engine.dispose()
        admin.dispose()


def test_read_and_write_slots_never_exhaust_the_pool() -> None:
    # a request may hold a read session and then take a write slot (backend.db.run_write)
    from backend.db import POOL_OVERFLOW, POOL_SIZE, READ_SLOTS, SERVER_SLOTS

    assert READ_SLOTS + max(POOL_SIZE, SERVER_SLOTS) < POOL_SIZE + POOL_OVERFLOW
    assert READ_SLOTS + POOL_SIZE < 40  # the server's threads


def test_sqlite_writers_take_turns_through_a_lock_file_beside_the_database(
    tmp_path: Path,
) -> None:
    """writer_turn: a second writer waits until the first lets go, and goes on at once then."""
    engine = make_engine(f"sqlite:///{tmp_path / 'study.db'}")
    lock_file = write_lock_file(engine)
    assert lock_file == tmp_path / "study.db.writer"
    assert write_lock_file(create_engine("sqlite://")) is None  # in memory: one process
    assert write_lock_file(make_engine("postgresql+psycopg://db.example/x")) is None
    events: list[tuple[str, float]] = []
    first_in = threading.Event()

    def first() -> None:
        with writer_turn(lock_file):
            events.append(("first in", time.monotonic()))
            first_in.set()
            time.sleep(0.3)
            events.append(("first out", time.monotonic()))

    t = threading.Thread(target=first)
    t.start()
    assert first_in.wait(10)
    with writer_turn(lock_file):
        events.append(("second in", time.monotonic()))
    t.join()
    assert [e for e, _ in events] == ["first in", "first out", "second in"]
    assert events[2][1] - events[1][1] < 0.1  # woken as the first left, not at a polling tick
    engine.dispose()
