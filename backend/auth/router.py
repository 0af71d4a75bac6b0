from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from backend.auth import service
from backend.auth.deps import SESSION_COOKIE, AdminUser, CurrentUser, request_token
from backend.auth.limiter import LoginLimiter
from backend.auth.schemas import LoginRequest, LoginResponse, UserCreate, UserRead
from backend.auth.service import IssuedLogin
from backend.config import Settings
from backend.db import SessionDep
from backend.errors import UnauthorizedError

router = APIRouter(prefix="/api", tags=["auth"])


LIMITER = LoginLimiter()


def checked_login(request: Request, session: Session, username: str, password: str) -> IssuedLogin:
    """Sign in, rate limited per username and per address (backend.auth.limiter)."""
    address = request.client.host if request.client else "unknown"
    LIMITER.check(session, username, address)
    try:
        issued = service.login(
            session, username, password, hours=request.app.state.settings.session_hours
        )
    except UnauthorizedError:
        LIMITER.failed(session, username, address)
        # The request fails, and its transaction would be rolled back with it: the failure must
        # count all the same. The one commit outside backend.db.get_session.
        session.commit()
        raise
    LIMITER.succeeded(session, username)
    return issued


@router.post("/auth/login", response_model=LoginResponse)
def login(
    body: LoginRequest, request: Request, response: Response, session: SessionDep
) -> LoginResponse:
    settings: Settings = request.app.state.settings
    issued = checked_login(request, session, body.username, body.password)
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=settings.session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.env == "production",
    )
    return LoginResponse(
        token=issued.token, expires_at=issued.expires_at, user=UserRead.model_validate(issued.user)
    )


@router.post("/auth/logout", status_code=204)
def logout(request: Request, response: Response, session: SessionDep, _user: CurrentUser) -> None:
    token = request_token(request)
    if token:
        service.logout(session, token)
    response.delete_cookie(SESSION_COOKIE)


@router.get("/auth/me", response_model=UserRead)
def me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)


@router.get("/users", response_model=list[UserRead])
def list_users(session: SessionDep, _admin: AdminUser) -> list[UserRead]:
    return [UserRead.model_validate(u) for u in service.list_users(session)]


@router.post("/users", response_model=UserRead, status_code=201)
def create_user(body: UserCreate, session: SessionDep, _admin: AdminUser) -> UserRead:
    return UserRead.model_validate(service.create_user(session, body))
