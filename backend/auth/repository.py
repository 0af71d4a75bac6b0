from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from backend.auth.models import AuthSession, SignInFailure, User


def get_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def get_user_by_username(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).first()


def list_users(session: Session) -> Sequence[User]:
    return session.scalars(select(User).order_by(User.username)).all()


def add_session(session: Session, auth_session: AuthSession) -> None:
    session.add(auth_session)
    session.flush()


def find_session(session: Session, token_hash: str) -> AuthSession | None:
    return session.scalars(select(AuthSession).where(AuthSession.token_hash == token_hash)).first()


def delete_session(session: Session, token_hash: str) -> None:
    session.execute(delete(AuthSession).where(AuthSession.token_hash == token_hash))


def delete_expired_sessions(session: Session, now: datetime) -> None:
    session.execute(delete(AuthSession).where(AuthSession.expires_at < now))


class FailureCount(NamedTuple):
    key: str
    failures: int
    oldest: datetime


def recent_failures(session: Session, keys: Iterable[str], since: datetime) -> list[FailureCount]:
    """Per key, the failed sign-ins after `since` and when the oldest of them was."""
    rows = session.execute(
        select(SignInFailure.key, func.count(), func.min(SignInFailure.at))
        .where(SignInFailure.key.in_(list(keys)), SignInFailure.at > since)
        .group_by(SignInFailure.key)
    ).all()
    return [FailureCount(key, n, oldest) for key, n, oldest in rows]


def add_failures(session: Session, keys: Iterable[str], at: datetime) -> None:
    session.add_all([SignInFailure(key=key, at=at) for key in keys])
    session.flush()


def forget_failures_before(session: Session, cutoff: datetime) -> None:
    session.execute(delete(SignInFailure).where(SignInFailure.at <= cutoff))


def clear_failures(session: Session, key: str) -> None:
    session.execute(delete(SignInFailure).where(SignInFailure.key == key))
