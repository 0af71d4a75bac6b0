"""Coordinator HTML routes: the studies, one study (thin: services and the JSON API)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from backend.auth.deps import CoordinatorPage
from backend.db import IdPath, SessionDep
from backend.errors import AppError
from backend.piesets import service as piesets_service
from backend.stats import service as stats_service
from backend.studies import service
from backend.templating import PageError, templates

router = APIRouter(include_in_schema=False)
# How often the study page refreshes its progress (tests ask for a quicker refresh).
RefreshMs = Annotated[int, Query(ge=500, le=600_000)]


@router.get("/studies", response_class=HTMLResponse)
def studies(request: Request, session: SessionDep, user: CoordinatorPage) -> Response:
    rows = [(s, service.progress(session, s)) for s in service.list_studies(session, user)]
    context: dict[str, Any] = {
        "user": user,
        "rows": rows,
        "pie_sets": piesets_service.list_pie_sets(session),
    }
    return templates.TemplateResponse(request, "coordinator/studies.html", context)


@router.get("/studies/{study_id}", response_class=HTMLResponse)
def study(
    study_id: IdPath,
    request: Request,
    session: SessionDep,
    user: CoordinatorPage,
    refresh_ms: RefreshMs = 10_000,
) -> Response:
    try:
        item = service.visible_study(session, user, study_id)
    except AppError as exc:
        raise PageError("No such study.") from exc
    context = {
        "user": user,
        "study": item,
        "progress": service.progress(session, item),
        "stats": stats_service.study_stats(session, item, n_boot=1000),
        "caution": stats_service.MODEL_CAUTION,
        "pie_set": piesets_service.get_pie_set(session, item.pie_set_id),
        "refresh_ms": refresh_ms,
    }
    return templates.TemplateResponse(request, "coordinator/study.html", context)
