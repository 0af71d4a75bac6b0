"""Coordinator HTML routes: the studies, one study (thin: services and the JSON API)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from backend.auth.deps import CoordinatorPage
from backend.auth.models import User
from backend.datasets.models import Dataset
from backend.db import IdPath, SessionDep
from backend.errors import AppError
from backend.piesets import service as piesets_service
from backend.stats import export, report
from backend.stats import service as stats_service
from backend.stats.service import Rule
from backend.studies import service
from backend.templating import PageError, templates
from backend.timeutil import utcnow

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


Include = Annotated[Literal["complete", "all"], Query()]
ExcludeReader = Annotated[list[int], Query()]


def _stats_context(
    session: Session, user: User, study_id: int, include: Rule, exclude_reader: list[int]
) -> dict[str, Any]:
    """What the study page and its report share: the study, its readers and the statistics of
    the answers counted under the chosen rule."""
    try:
        item = service.visible_study(session, user, study_id)
    except AppError as exc:
        raise PageError("No such study.") from exc
    excluded = sorted(set(exclude_reader))
    query = urlencode([("include", include)] + [("exclude_reader", r) for r in excluded])
    return {
        "user": user,
        "study": item,
        "progress": (progress := service.progress(session, item)),
        "readers": progress,
        "stats": stats_service.study_stats(session, item, rule=include, exclude_readers=excluded),
        "selection": {"include": include, "excluded": excluded, "query": f"?{query}"},
        "caution": stats_service.MODEL_CAUTION,
        "pie_set": piesets_service.get_pie_set(session, item.pie_set_id),
    }


@router.get("/studies/{study_id}", response_class=HTMLResponse)
def study(
    study_id: IdPath,
    request: Request,
    session: SessionDep,
    user: CoordinatorPage,
    refresh_ms: RefreshMs = 10_000,
    include: Include = "complete",
    exclude_reader: ExcludeReader = [],  # noqa: B006 (FastAPI copies it)
) -> Response:
    context = _stats_context(session, user, study_id, include, exclude_reader)
    context["refresh_ms"] = refresh_ms
    return templates.TemplateResponse(request, "coordinator/study.html", context)


@router.get("/studies/{study_id}/report", response_class=HTMLResponse)
def study_report(
    study_id: IdPath,
    request: Request,
    session: SessionDep,
    user: CoordinatorPage,
    include: Include = "complete",
    exclude_reader: ExcludeReader = [],  # noqa: B006 (FastAPI copies it)
    download: bool = False,
) -> Response:
    """The statistics report, print-ready and self-contained (its styles inline, no script), to
    print to PDF from the browser or, with ?download=1, to keep as an HTML file."""
    context = _stats_context(session, user, study_id, include, exclude_reader)
    versions = report.software_versions()
    context |= {
        "dataset": session.get(Dataset, context["pie_set"].dataset_id),
        "methods": report.methods(context["study"], context["stats"], versions),
        "generated_at": utcnow(),
        "styles": report.styles(),
    }
    response = templates.TemplateResponse(request, "coordinator/report.html", context)
    if download:
        response.headers.update(export.download_headers(context["study"], "report", "html"))
    return response
