from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from backend.auth.models import AuthSession, User


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
