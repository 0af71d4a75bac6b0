"""Sign-in, sign-out, and the front door `/` (thin: the auth service does the work)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backend.auth import service
from backend.auth.deps import (
    SESSION_COOKIE,
    client_address,
    home_page,
    request_token,
    set_session_cookie,
    signed_in_user,
)
from backend.db import SessionDep
from backend.errors import AppError
from backend.reading.deps import signed_in_reader
from backend.templating import SIGN_IN, templates

router = APIRouter(include_in_schema=False)


@router.get("/")
def front_door(request: Request, session: SessionDep) -> Response:
    """A signed-in account goes to its home page, a reader to their cases, anyone else to
    sign in."""
    user = signed_in_user(request, session)
    if user is not None:
        target = home_page(user)
    elif signed_in_reader(request, session) is not None:
        target = "/read"
    else:
        target = SIGN_IN
    return RedirectResponse(target, status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return templates.TemplateResponse(request, "auth/login.html", {"error": None})


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=80)],
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    settings = request.app.state.settings
    try:
        issued = service.sign_in(
            session, username, password,
            address=client_address(request), hours=settings.session_hours,
        )  # fmt: skip
    except AppError as exc:
        return templates.TemplateResponse(
            request, "auth/login.html", {"error": exc.message}, status_code=exc.status_code
        )
    response = RedirectResponse(home_page(issued.user), status_code=303)
    set_session_cookie(response, settings, issued.token)
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep) -> Response:
    token = request_token(request)
    if token:
        service.logout(session, token)
    response = RedirectResponse(SIGN_IN, status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
