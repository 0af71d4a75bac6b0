"""Researcher pages for runs: follow one live (they are started from the research page)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from backend.auth.deps import ResearcherPage
from backend.db import IdPath, SessionDep
from backend.errors import NotFoundError
from backend.runs import service
from backend.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/research/runs/{run_id}", response_class=HTMLResponse)
def run_page(
    run_id: IdPath, request: Request, session: SessionDep, user: ResearcherPage
) -> Response:
    try:
        run = service.get_run(session, run_id)
    except NotFoundError:
        context = {"user": user, "run": None}
        return templates.TemplateResponse(request, "research/run.html", context, status_code=404)
    return templates.TemplateResponse(request, "research/run.html", {"user": user, "run": run})
