"""`piestudy db backup` / `db restore`: a consistent copy of the whole database, online.

SQLite: the online backup API (a consistent snapshot while the server keeps writing), checked with
`PRAGMA integrity_check` before it is renamed into place. PostgreSQL: `pg_dump --format=custom`
(one consistent snapshot) and `pg_restore --clean --single-transaction` (all or nothing). The
password travels in PGPASSWORD, never on a command line. After a restore the schema is migrated
to this version's head, so an older backup comes back usable.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url

from ml.fileio import atomic_output


class BackupError(Exception):
    pass


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    size: int
    kind: str  # "sqlite" or "postgresql"


def _sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if not u.drivername.startswith("sqlite"):
        return None
    if not u.database or u.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(u.database)


def _pg(url: str) -> tuple[list[str], dict[str, str]]:
    u = make_url(url)
    if not u.drivername.startswith("postgresql"):
        raise BackupError(f"backups support SQLite and PostgreSQL, not {u.drivername}")
    args = ["--dbname", str(u.database)]
    if u.host:
        args += ["--host", u.host]
    if u.port:
        args += ["--port", str(u.port)]
    if u.username:
        args += ["--username", u.username]
    env = {**os.environ}
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    return args, env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} is not installed here (Debian: postgresql-client, of the server's version)"
        )
    return path


def _check_sqlite_file(path: Path) -> None:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            ok = con.execute("PRAGMA integrity_check").fetchone()
            tables = {
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        con.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite database ({exc})") from exc
    if not ok or ok[0] != "ok":
        raise BackupError(f"{path} failed SQLite's integrity check: {ok}")
    if "alembic_version" not in tables:
        raise BackupError(f"{path} is not a piestudy database (no schema version)")


def backup(url: str, out: Path) -> BackupInfo:
    out = out.resolve()
    if out.exists():
        raise BackupError(f"{out} exists already; choose a new file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        source = _sqlite_path(url)
        if source is not None:
            if not source.is_file():
                raise BackupError(f"no database at {source}")
            src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()
            _check_sqlite_file(tmp)
            kind = "sqlite"
        else:
            args, env = _pg(url)
            done = subprocess.run(  # noqa: S603 - fixed program, arguments from the settings
                [_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(tmp), *args],
                env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
            kind = "postgresql"
    return BackupInfo(out, out.stat().st_size, kind)


def restore(url: str, src: Path) -> None:
    """Replace the database's contents with the backup's, then migrate to head."""
    from backend import migrate

    if not src.is_file():
        raise BackupError(f"no backup file at {src}")
    target = _sqlite_path(url)
    if target is not None:
        _check_sqlite_file(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
        dest = sqlite3.connect(target, timeout=30)
        try:
            source.backup(dest)  # page by page, under the destination's lock: all or nothing
        finally:
            dest.close()
            source.close()
    else:
        with src.open("rb") as f:
            if f.read(5) != b"PGDMP":
                raise BackupError(f"{src} is not a pg_dump custom-format backup")
        args, env = _pg(url)
        done = subprocess.run(  # noqa: S603 - fixed program, arguments from the settings
            [_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
             "--exit-on-error", *args, str(src)],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise BackupError(f"pg_restore failed, nothing was changed: {done.stderr.strip()}")
    migrate.upgrade(url)
