"""Accounts, passwords (argon2) and login sessions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from backend.auth import repository
from backend.auth.limiter import LoginLimiter
from backend.auth.models import AuthSession, Role, User
from backend.auth.schemas import UserCreate
from backend.auth.tokens import hash_token, new_token
from backend.errors import ConflictError, InvalidInputError, UnauthorizedError
from backend.timeutil import utcnow

_hasher = PasswordHasher()
# Verified against when the username does not exist, so both failures take the same time.
_DUMMY_HASH = _hasher.hash("piestudy-no-such-user")


@dataclass(frozen=True)
class IssuedLogin:
    token: str
    expires_at: datetime
    user: User


def create_user(session: Session, data: UserCreate) -> User:
    if repository.get_user_by_username(session, data.username) is not None:
        raise ConflictError(f"a user named {data.username!r} already exists")
    user = User(
        username=data.username,
        display_name=data.display_name or data.username,
        password_hash=_hasher.hash(data.password),
        role=data.role,
    )
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, user: User, password: str) -> None:
    if len(password) < 10:
        raise InvalidInputError("password: at least 10 characters")
    user.password_hash = _hasher.hash(password)
    session.flush()


def list_users(session: Session) -> Sequence[User]:
    return repository.list_users(session)


def login(session: Session, username: str, password: str, *, hours: int) -> IssuedLogin:
    user = repository.get_user_by_username(session, username)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        user = None
    if user is None or not user.is_active:
        raise UnauthorizedError("wrong username or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    now = utcnow()
    repository.delete_expired_sessions(session, now)
    token = new_token()
    expires_at = now + timedelta(hours=hours)
    repository.add_session(
        session, AuthSession(token_hash=hash_token(token), user_id=user.id, expires_at=expires_at)
    )
    return IssuedLogin(token=token, expires_at=expires_at, user=user)


LIMITER = LoginLimiter()


def sign_in(
    session: Session, username: str, password: str, *, address: str, hours: int
) -> IssuedLogin:
    """login(), rate limited per username and per address (backend.auth.limiter): what both the
    JSON API and the sign-in page call."""
    LIMITER.check(session, username, address)
    try:
        issued = login(session, username, password, hours=hours)
    except UnauthorizedError:
        LIMITER.failed(session, username, address)
        # The request fails, and its transaction would be rolled back with it: the failure must
        # count all the same. The one commit outside backend.db.get_session.
        session.commit()
        raise
    LIMITER.succeeded(session, username)
    return issued


def user_for_token(session: Session, token: str) -> User | None:
    found = repository.find_session(session, hash_token(token))
    if found is None or found.expires_at < utcnow():
        return None
    user = repository.get_user(session, found.user_id)
    return user if user is not None and user.is_active else None


def logout(session: Session, token: str) -> None:
    repository.delete_session(session, hash_token(token))


def is_role(user: User, *roles: Role) -> bool:
    return user.role == Role.admin or user.role in roles
