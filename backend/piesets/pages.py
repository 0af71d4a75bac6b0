"""Researcher HTML routes: the research page, PIE sets (provenance, score distribution, PIE
thumbnails), their reports, and image thumbnails."""

from __future__ import annotations

import html
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from backend.auth.deps import ResearcherImage, ResearcherPage
from backend.datasets import service as datasets_service
from backend.db import IdPath, SessionDep
from backend.derivatives import THUMBNAIL, derived_image
from backend.errors import AppError
from backend.piesets import service
from backend.piesets.compare import compare_pie_sets, curves_png
from backend.runs import service as runs_service
from backend.templating import PageError, templates
from ml.runparams import PRUNED_SPARSITIES, option_specs

router = APIRouter(include_in_schema=False)


@router.get("/research", response_class=HTMLResponse)
def research(request: Request, session: SessionDep, user: ResearcherPage) -> Response:
    context: dict[str, Any] = {
        "user": user,
        "datasets": datasets_service.list_datasets(session),
        "pie_sets": service.list_pie_sets(session),
        "runs": runs_service.list_runs(session)[:50],
        "run_options": option_specs(),  # the form follows the one declaration of the options
        "sparsities": PRUNED_SPARSITIES,
    }
    return templates.TemplateResponse(request, "research/index.html", context)


def histogram(scores: list[float], bins: int = 20) -> list[tuple[float, float, int]]:
    """(low, high, count) over [-1, 1], the range of a Spearman correlation."""
    edges = [-1 + 2 * i / bins for i in range(bins + 1)]
    counts = [0] * bins
    for s in scores:
        counts[min(int((s + 1) / 2 * bins), bins - 1)] += 1
    return [(edges[i], edges[i + 1], counts[i]) for i in range(bins)]


def _pie_set(session: SessionDep, pie_set_id: int) -> Any:
    try:
        return service.get_pie_set(session, pie_set_id)
    except AppError as exc:
        raise PageError("No such PIE set.") from exc


@router.get("/research/piesets/{pie_set_id}", response_class=HTMLResponse)
def pie_set_page(
    pie_set_id: IdPath, request: Request, session: SessionDep, user: ResearcherPage
) -> Response:
    pie_set = _pie_set(session, pie_set_id)
    overview = service.overview(session, pie_set, shown=200)
    hist = histogram(overview.scores)
    context = {
        "user": user, "pie_set": pie_set, "dataset": overview.dataset, "thumbs": overview.pies,
        "hist": hist, "hist_max": max((c for *_, c in hist), default=1) or 1,
        "threshold": overview.threshold, "n_scores": len(overview.scores),
        "undefined": overview.undefined,
        "has_report": service.report_path(pie_set, request.app.state.settings.resolved_media_dir) is not None,
    }  # fmt: skip
    return templates.TemplateResponse(request, "research/pieset.html", context)


@router.get("/research/compare", response_class=HTMLResponse)
def compare_page(
    request: Request, session: SessionDep, user: ResearcherPage,
    id: Annotated[list[int] | None, Query()] = None,
) -> Response:  # fmt: skip
    """PIE sets side by side (chosen on the research page)."""
    try:
        result = compare_pie_sets(session, id or [], request.app.state.settings)
    except AppError as exc:
        raise PageError(exc.message, title="Cannot compare these PIE sets") from exc
    context = {"user": user, "result": result, "curves_png": curves_png(result)}
    return templates.TemplateResponse(request, "research/compare.html", context)


@router.get("/research/piesets/{pie_set_id}/report", response_class=HTMLResponse)
def pie_set_report(
    pie_set_id: IdPath,
    request: Request,
    session: SessionDep,
    _user: ResearcherPage,
    download: bool = False,
) -> Response:
    """The PIE set's analysis report in the app: a way back to the PIE set, a print button
    (the report's print layout), and with ?download=1 the file as it was made."""
    pie_set = _pie_set(session, pie_set_id)
    path = service.report_path(pie_set, request.app.state.settings.resolved_media_dir)
    if path is None:
        raise PageError("This PIE set has no analysis report.", title="No report")
    if download:
        name = f"pie-set-{pie_set.id}-v{pie_set.version}-report.html"
        return FileResponse(path, media_type="text/html", filename=name)
    page = path.read_text(encoding="utf-8", errors="replace")
    bar = REPORT_BAR.format(id=pie_set.id, name=html.escape(f"{pie_set.name} v{pie_set.version}"))
    # the way back and the print button go in after <body>, in the report's own page (the
    # file itself stays as it was made, for the download); its scripts cannot run (the CSP)
    body = re.search(r"<body[^>]*>", page, re.IGNORECASE)
    at = body.end() if body else 0
    return HTMLResponse(page[:at] + bar + page[at:], headers={"cache-control": "private, no-cache"})


REPORT_BAR = (
    '<header class="topbar no-print" id="report-bar" style="max-width:62rem;margin:0 auto;'
    'padding:0.75rem 2rem 0"><a href="/research/piesets/{id}">← Back to {name}</a>'
    '<span class="actions"><button type="button" id="print" hidden>Print or save as PDF</button>'
    '<a class="button" href="/research/piesets/{id}/report?download=1" download>'
    "Download this report (HTML)</a></span></header>"
    '<script src="/static/js/report.js" defer></script>'
)


@router.get("/research/images/{image_id}/thumbnail")
def thumbnail(
    image_id: IdPath, request: Request, session: SessionDep, _user: ResearcherImage
) -> Response:
    """A small PNG of a dataset image, for researchers (never a reader route), made once. An
    image, not a page: the signed-out get 401, not the sign-in page."""
    source = datasets_service.image_file(session, image_id)
    if source is None:
        return Response(status_code=404)
    target = derived_image(source, THUMBNAIL, request.app.state.settings.resolved_media_dir)
    return FileResponse(
        target, media_type="image/png", headers={"cache-control": "private, max-age=86400"}
    )
