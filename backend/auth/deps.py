"""Who is calling: the coordinator-side identity from a bearer token or the session cookie."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from backend.auth import service
from backend.auth.models import Role, User
from backend.db import SessionDep
from backend.errors import ForbiddenError, UnauthorizedError

SESSION_COOKIE = "piestudy_session"


def request_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE)


def current_user(request: Request, session: SessionDep) -> User:
    token = request_token(request)
    if not token:
        raise UnauthorizedError(
            "sign in first: send 'Authorization: Bearer <token>' from /api/auth/login"
        )
    user = service.user_for_token(session, token)
    if user is None:
        raise UnauthorizedError("your sign-in has expired or was revoked; sign in again")
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def page_user(request: Request, session: SessionDep, *roles: Role) -> User | None:
    """The signed-in user for an HTML page if they hold one of the roles (admins always do)."""
    token = request_token(request)
    user = service.user_for_token(session, token) if token else None
    return user if user is not None and service.is_role(user, *roles) else None


def require_roles(*roles: Role) -> Callable[[User], User]:
    allowed = ", ".join(sorted({"admin", *roles}))

    def check(user: CurrentUser) -> User:
        if not service.is_role(user, *roles):
            raise ForbiddenError(f"this needs the role {allowed}; you are {user.role.value}")
        return user

    return check


AdminUser = Annotated[User, Depends(require_roles(Role.admin))]
ResearcherUser = Annotated[User, Depends(require_roles(Role.researcher))]
CoordinatorUser = Annotated[User, Depends(require_roles(Role.coordinator))]
# Reading datasets and PIE sets: researchers own them, coordinators build studies from them.
DataReader = Annotated[User, Depends(require_roles(Role.researcher, Role.coordinator))]
