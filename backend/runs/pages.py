"""Researcher pages for runs: start one, follow it live."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backend.auth.deps import page_user
from backend.auth.models import Role
from backend.db import IdPath, SessionDep
from backend.runs import repository
from backend.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/research/runs/{run_id}", response_class=HTMLResponse)
def run_page(run_id: IdPath, request: Request, session: SessionDep) -> Response:
    user = page_user(request, session, Role.researcher)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    run = repository.get(session, run_id)
    if run is None:
        return templates.TemplateResponse(
            request, "research/run.html", {"user": user, "run": None}, status_code=404
        )
    return templates.TemplateResponse(request, "research/run.html", {"user": user, "run": run})
