"""What the `piestudy` commands share: the console, one transaction per command, lookups."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import make_url
from sqlalchemy.orm import Session

from backend.auth import repository as auth_repo
from backend.auth.models import User
from backend.config import get_settings
from backend.db import make_engine, make_sessionmaker
from backend.errors import AppError
from ml.console import console, err, fail

__all__ = ["console", "err", "fail", "find_user", "safe_url", "session_scope"]


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction: committed when the block succeeds, rolled back (nothing written) if not.
    An AppError is printed with its problems, and the command exits with status 2."""
    engine = make_engine(get_settings().resolved_database_url)
    try:
        with make_sessionmaker(engine)() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
    except AppError as exc:
        detail = exc.detail if isinstance(exc.detail, dict) else {}
        problems = detail.get("problems") or []
        exit_ = fail(exc.message)
        for p in problems:
            err.print(f"  {p['file']}:{p['line']}: {p['field']}: {p['message']}", markup=False)
        if detail.get("total", 0) > len(problems):
            err.print(f"  ... {detail['total'] - len(problems)} more")
        raise exit_ from exc
    finally:
        engine.dispose()


def find_user(session: Session, username: str) -> User:
    user = auth_repo.get_user_by_username(session, username)
    if user is None:
        raise fail(f"no user named {username!r}; create one with `piestudy user create`")
    return user


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
