"""Coordinator HTML routes: sign in, studies, one study (thin: services and the JSON API)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backend.auth import service as auth_service
from backend.auth.deps import SESSION_COOKIE, page_user, request_token
from backend.auth.models import Role, User
from backend.auth.router import checked_login
from backend.db import IdPath, SessionDep
from backend.errors import AppError
from backend.piesets import service as piesets_service
from backend.stats import service as stats_service
from backend.studies import service
from backend.templating import templates

router = APIRouter(include_in_schema=False)


def _user(request: Request, session: SessionDep) -> User | None:
    return page_user(request, session, Role.coordinator)


def _login_redirect() -> Response:
    return RedirectResponse("/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return templates.TemplateResponse(request, "coordinator/login.html", {"error": None})


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=80)],
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    settings = request.app.state.settings
    try:
        issued = checked_login(request, session, username, password)
    except AppError as exc:
        return templates.TemplateResponse(
            request, "coordinator/login.html", {"error": exc.message}, status_code=exc.status_code
        )
    home = "/research" if issued.user.role == Role.researcher else "/studies"
    response = RedirectResponse(home, status_code=303)
    response.set_cookie(
        SESSION_COOKIE, issued.token, max_age=settings.session_hours * 3600, httponly=True,
        samesite="strict", secure=settings.env == "production",
    )  # fmt: skip
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep) -> Response:
    token = request_token(request)
    if token:
        auth_service.logout(session, token)
    response = _login_redirect()
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/studies", response_class=HTMLResponse)
def studies(request: Request, session: SessionDep) -> Response:
    user = _user(request, session)
    if user is None:
        return _login_redirect()
    rows = [(s, service.progress(session, s)) for s in service.list_studies(session, user)]
    context: dict[str, Any] = {
        "user": user,
        "rows": rows,
        "pie_sets": piesets_service.list_pie_sets(session),
    }
    return templates.TemplateResponse(request, "coordinator/studies.html", context)


@router.get("/studies/{study_id}", response_class=HTMLResponse)
def study(study_id: IdPath, request: Request, session: SessionDep) -> Response:
    user = _user(request, session)
    if user is None:
        return _login_redirect()
    try:
        item = service.visible_study(session, user, study_id)
    except AppError:
        return templates.TemplateResponse(
            request, "reader/error.html", {"message": "No such study."}, status_code=404
        )
    context = {
        "user": user,
        "study": item,
        "progress": service.progress(session, item),
        "stats": stats_service.study_stats(session, item, n_boot=1000),
        "pie_set": piesets_service.get_pie_set(session, item.pie_set_id),
        # tests ask for a quicker refresh with ?refresh_ms=...
        "refresh_ms": max(500, min(int(request.query_params.get("refresh_ms", 10000)), 600000)),
    }
    return templates.TemplateResponse(request, "coordinator/study.html", context)
