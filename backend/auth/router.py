from __future__ import annotations

from fastapi import APIRouter, Request, Response

from backend.auth import service
from backend.auth.deps import (
    SESSION_COOKIE,
    AdminUser,
    CurrentUser,
    client_address,
    request_token,
    set_session_cookie,
)
from backend.auth.schemas import LoginRequest, LoginResponse, UserCreate, UserRead
from backend.db import SessionDep

router = APIRouter(prefix="/api", tags=["auth"])


@router.post("/auth/login", response_model=LoginResponse)
def login(
    body: LoginRequest, request: Request, response: Response, session: SessionDep
) -> LoginResponse:
    settings = request.app.state.settings
    issued = service.sign_in(
        session, body.username, body.password,
        address=client_address(request), hours=settings.session_hours,
    )  # fmt: skip
    set_session_cookie(response, settings, issued.token)
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
