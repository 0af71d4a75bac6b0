"""Database: declarative base, engines, and the request-scoped session."""

from __future__ import annotations

import fcntl
import os
import select
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from fastapi import Path as PathParam
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, make_url, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use backend.timeutil.utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


T = TypeVar("T")

# Execution option marking an engine whose transactions only read (see read_only).
READ_ONLY = "piestudy_read_only"


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINTs and transactional DDL; take it over
    # (the recipe from SQLAlchemy's SQLite dialect documentation). BEGIN IMMEDIATE takes the
    # write lock up front, so concurrent writers wait on busy_timeout instead of failing with
    # "database is locked" when a read transaction tries to upgrade.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A read-only engine (see read_only) begins a deferred transaction: in WAL mode it reads
        # a snapshot and never takes or waits for the write lock.
        deferred = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


def read_only(engine: Engine) -> Engine:
    """The same engine and pool, for work that only reads (exports, health checks).

    On SQLite its transactions are deferred, so a long export never holds the write lock that
    readers' answer saves need. Elsewhere it is the engine itself.
    """
    return engine.execution_options(**{READ_ONLY: True})


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False},
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    psycopg = make_url(url).get_driver_name() == "psycopg"
    engine = create_engine(
        url, pool_pre_ping=not psycopg, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, **kwargs
    )
    if psycopg:
        _check_liveness_on_checkout(engine)
    return engine


def _check_liveness_on_checkout(engine: Engine) -> None:
    """Hand out only pooled connections the server has not closed, without a round trip.

    A pooled connection sits idle between requests, so its socket has nothing to read unless the
    server has hung up (a restart, an administrator's terminate: it sends an error and closes).
    Such a connection is replaced before a request sees it, as a pre-ping would, which costs a
    SELECT 1 on every checkout: a twelfth of an answer save's round trips.
    """

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection.closed or _readable(dbapi_connection.pgconn.socket):
            raise DisconnectionError("the database server closed this pooled connection")


def _readable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(0))


POOL_SIZE = 10
POOL_OVERFLOW = 20


def request_slots(engine: Engine, configured: int | None = None, processes: int = 1) -> int:
    """How many requests of this server process may hold a database session at once (see
    get_session).

    SQLite has one writer and every request transaction takes the write lock: one. PostgreSQL:
    a few in all, so that one request's round trips overlap another's Python work; more only
    share the cores between more requests and make each slower. With several server processes
    the few are shared out, two each at least (measured at 200 readers on 2 cores with 2
    processes: p99 answer save 50 ms with 4 each, 36 ms with 2 each). Always fewer than the
    pool's connections and the server's threads (40), so no admitted request waits for either.
    """
    if configured:
        slots = configured
    elif engine.dialect.name == "sqlite":
        slots = 1
    else:
        slots = max(2, SERVER_SLOTS // max(processes, 1))
    return min(slots, POOL_SIZE)


SERVER_SLOTS = 4


def ping(engine: Engine) -> None:
    """A round trip to the database; raises whatever keeps it from answering."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: committed before the response is sent, rolled back on error.

    Services only flush; this is the one place that commits, so an acknowledged write is a
    committed write.

    Admission: a request waits for one of the app's database slots (request_slots) on the event
    loop, before it holds a connection or a lock. FastAPI runs the sync dependencies and the
    endpoint in separate worker-thread hops, so a transaction begun in one hop stays open while
    the request waits for a thread for the next. Were requests admitted freely, the threads could
    all be taken by requests blocked on SQLite's write lock (or on an empty pool) while the
    request that holds it waits for a thread: everyone stalls until the busy timeout and answers
    500. With slots fewer than threads and connections, whoever holds a slot always gets a
    thread and a connection, and the rest queue in order, costing no thread.
    """
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    slots: anyio.Semaphore = request.app.state.db_slots
    async with slots:
        session = factory()
        try:
            yield session
        except BaseException:
            # Closing rolls back. Shielded: a cancelled request must still give its connection
            # (and the lock) back.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(session.close)
            raise
        # One thread hop for both (each hop is a wait for a thread and for the interpreter).
        await anyio.to_thread.run_sync(_commit_and_close, session)


def _commit_and_close(session: Session) -> None:
    try:
        session.commit()
    finally:
        session.close()


# scope="function": the commit runs before the response goes out, never after.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


# Requests of one server process that may hold a read-only session at once: fewer than the
# threads (40), and with the write slots (at most POOL_SIZE) fewer than the pool's connections
# (POOL_SIZE + POOL_OVERFLOW), so that a request holding a read session and then writing
# (run_write) always finds a connection: no reader waits for one that a writer needs.
READ_SLOTS = 4


async def get_read_session(request: Request) -> AsyncIterator[Session]:
    """A session for a request that only reads, and may then work a while (an image rendered on
    first use): on SQLite its transaction is deferred, so it never holds or waits for the write
    lock, and it waits for a read slot, not for one of the few write slots (see get_session),
    so reads never queue the answer saves behind them. Nothing it does is committed."""
    factory: sessionmaker[Session] = request.app.state.read_sessionmaker
    slots: anyio.Semaphore = request.app.state.read_slots
    async with slots:
        session = factory()
        try:
            yield session
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(session.close)


async def run_write(request: Request, work: Callable[[Session], T]) -> T:
    """A short write of a request that otherwise reads (a case view, recorded): through a write
    slot and a transaction of its own, committed before it returns."""
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    slots: anyio.Semaphore = request.app.state.db_slots
    lock_file = write_lock_file(request.app.state.engine)

    def run() -> T:
        with writer_turn(lock_file), factory() as session:
            result = work(session)
            session.commit()
            return result

    async with slots:
        return await anyio.to_thread.run_sync(run)


ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]


def write_lock_file(engine: Engine) -> Path | None:
    """Beside a SQLite database file, the file whose lock orders the writers of every server
    process (see writer_turn); None elsewhere."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).with_name(Path(database).name + ".writer")


@contextmanager
def writer_turn(lock_file: Path | None) -> Iterator[None]:
    """Wait for this writer's turn among the server's processes on one SQLite file.

    SQLite lets one transaction write at a time; another process's BEGIN IMMEDIATE finds it
    busy and polls, sleeping 1, 2, 5, 10, ... 100 ms between tries, so with two server
    processes a save could wait a hundred milliseconds for a lock freed long before. An
    exclusive lock on a file of its own, taken first, queues them instead, and the kernel
    wakes the next as soon as the last lets go (or dies: the lock goes with the process).
    Within a process the write slot (request_slots: one on SQLite) already queues them; this
    is for the readers' writes (run_write), the many; SQLite's own lock still covers the rest.
    """
    if lock_file is None:
        yield
        return
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing lets go of the lock


# Every id in a URL: database keys are 32-bit on every backend; larger numbers cannot name a row
# (and must never reach the database driver, which refuses them with an error).
MAX_ID = 2**31 - 1
IdPath = Annotated[int, PathParam(ge=1, le=MAX_ID)]
