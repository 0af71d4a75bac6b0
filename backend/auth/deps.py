"""Who is calling: the coordinator-side identity from a bearer token or the session cookie."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Response

from backend.auth import service
from backend.auth.models import Role, User
from backend.config import Settings
from backend.db import SessionDep
from backend.errors import ForbiddenError, UnauthorizedError
from backend.templating import SignInRequired

SESSION_COOKIE = "piestudy_session"


def request_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    """The sign-in cookie, the same from the JSON API and the sign-in page. SameSite=Lax: a
    coordinator who follows a link to a study from e-mail arrives signed in (Strict would not
    send the cookie), while cross-site writes are refused at the edge (backend.security)."""
    response.set_cookie(
        SESSION_COOKIE, token, max_age=settings.session_hours * 3600, httponly=True,
        samesite="lax", secure=settings.env == "production",
    )  # fmt: skip


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


def signed_in_user(request: Request, session: SessionDep) -> User | None:
    """Whoever is signed in (any role), or None: pages that show something to everyone."""
    token = request_token(request)
    return service.user_for_token(session, token) if token else None


def require_roles(*roles: Role) -> Callable[[User], User]:
    allowed = ", ".join(sorted({"admin", *roles}))

    def check(user: CurrentUser) -> User:
        if not service.is_role(user, *roles):
            raise ForbiddenError(f"this needs the role {allowed}; you are {user.role.value}")
        return user

    return check


def require_page_roles(
    *roles: Role, refusal: Callable[[], Exception] = SignInRequired
) -> Callable[[Request, SessionDep], User]:
    """The page guard: the signed-in user if they hold one of the roles (admins always do);
    anyone else is sent to the sign-in page (SignInRequired), or refused with `refusal`."""

    def check(request: Request, session: SessionDep) -> User:
        user = signed_in_user(request, session)
        if user is None or not service.is_role(user, *roles):
            raise refusal()
        return user

    return check


def _image_refusal() -> Exception:
    return UnauthorizedError("sign in as a researcher to see dataset images")


AdminUser = Annotated[User, Depends(require_roles(Role.admin))]
ResearcherUser = Annotated[User, Depends(require_roles(Role.researcher))]
CoordinatorUser = Annotated[User, Depends(require_roles(Role.coordinator))]
# Reading datasets and PIE sets: researchers own them, coordinators build studies from them.
DataReader = Annotated[User, Depends(require_roles(Role.researcher, Role.coordinator))]
CoordinatorPage = Annotated[User, Depends(require_page_roles(Role.coordinator))]
ResearcherPage = Annotated[User, Depends(require_page_roles(Role.researcher))]
# Images shown inside research pages: refused (401), never redirected to a page.
ResearcherImage = Annotated[
    User, Depends(require_page_roles(Role.researcher, refusal=_image_refusal))
]


def home_page(user: User) -> str:
    """Where a user lands after signing in."""
    return "/research" if user.role == Role.researcher else "/studies"
