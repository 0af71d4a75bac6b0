"""Researcher pages for runs: follow one live (they are started from the research page)."""

from __future__ import annotations

from typing import Any

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
        missing = {"user": user, "run": None}
        return templates.TemplateResponse(request, "research/run.html", missing, status_code=404)
    shown = service.describe(session, [run])[0]
    place = f"{service.ordinal(shown.queue_position)} in the queue" if shown.queue_position else ""
    context: dict[str, Any] = {"user": user, "run": run, "shown": shown, "place": place}
    return templates.TemplateResponse(request, "research/run.html", context)
