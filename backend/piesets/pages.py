"""Researcher HTML routes: datasets, PIE sets (provenance, score distribution, PIE thumbnails)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from backend.auth.deps import page_user
from backend.auth.models import Role, User
from backend.datasets import repository as datasets_repo
from backend.datasets import service as datasets_service
from backend.db import IdPath, SessionDep
from backend.errors import AppError
from backend.piesets import service
from backend.runs import service as runs_service
from backend.templating import templates
from ml.data.labels import resolve_image

router = APIRouter(include_in_schema=False)
THUMB = 160


def _researcher(request: Request, session: SessionDep) -> User | None:
    return page_user(request, session, Role.researcher)


@router.get("/research", response_class=HTMLResponse)
def research(request: Request, session: SessionDep) -> Response:
    user = _researcher(request, session)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    context: dict[str, Any] = {
        "user": user,
        "datasets": datasets_service.list_datasets(session),
        "pie_sets": service.list_pie_sets(session),
        "runs": runs_service.list_runs(session)[:50],
    }
    return templates.TemplateResponse(request, "research/index.html", context)


def histogram(scores: list[float], bins: int = 20) -> list[tuple[float, float, int]]:
    """(low, high, count) over [-1, 1], the range of a Spearman correlation."""
    edges = [-1 + 2 * i / bins for i in range(bins + 1)]
    counts = [0] * bins
    for s in scores:
        counts[min(int((s + 1) / 2 * bins), bins - 1)] += 1
    return [(edges[i], edges[i + 1], counts[i]) for i in range(bins)]


@router.get("/research/piesets/{pie_set_id}", response_class=HTMLResponse)
def pie_set_page(pie_set_id: IdPath, request: Request, session: SessionDep) -> Response:
    user = _researcher(request, session)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    try:
        pie_set = service.get_pie_set(session, pie_set_id)
    except AppError:
        return templates.TemplateResponse(
            request, "reader/error.html", {"message": "No such PIE set."}, status_code=404
        )
    dataset = datasets_service.get_dataset(session, pie_set.dataset_id)
    _, members = service.page_members(session, pie_set_id, offset=0, limit=100_000)
    scores = [m.score for m, _ in members if m.score is not None]
    pies = [(m, ext) for m, ext in members if m.is_pie]
    images = {i.id: i for i in datasets_repo.images_by_ids(session, [m.image_id for m, _ in pies])}
    thumbs = [
        {"image_id": m.image_id, "external_id": ext, "score": m.score, "rank": m.rank,
         "labels": [c for c, v in zip(dataset.classes, images[m.image_id].labels, strict=True) if v]}
        for m, ext in pies[:200]
    ]  # fmt: skip
    hist = histogram(scores)
    threshold = max((m.score for m, _ in pies if m.score is not None), default=None)
    context = {
        "user": user, "pie_set": pie_set, "dataset": dataset, "thumbs": thumbs, "hist": hist,
        "hist_max": max((c for *_, c in hist), default=1) or 1, "threshold": threshold,
        "n_scores": len(scores), "undefined": len(members) - len(scores),
        "has_report": service.report_path(pie_set, request.app.state.settings.resolved_media_dir) is not None,
    }  # fmt: skip
    return templates.TemplateResponse(request, "research/pieset.html", context)


@router.get("/research/piesets/{pie_set_id}/report", response_class=HTMLResponse)
def pie_set_report(pie_set_id: IdPath, request: Request, session: SessionDep) -> Response:
    if _researcher(request, session) is None:
        return RedirectResponse("/login", status_code=303)
    try:
        pie_set = service.get_pie_set(session, pie_set_id)
    except AppError:
        return Response(status_code=404)
    path = service.report_path(pie_set, request.app.state.settings.resolved_media_dir)
    if path is None:
        return Response("This PIE set has no analysis report.", status_code=404)
    return FileResponse(
        path, media_type="text/html", headers={"cache-control": "private, no-cache"}
    )


@router.get("/research/images/{image_id}/thumbnail")
def thumbnail(image_id: IdPath, request: Request, session: SessionDep) -> Response:
    """A small PNG of a dataset image, for researchers (never a reader route), made once."""
    from PIL import Image as PILImage

    if _researcher(request, session) is None:
        return Response(status_code=401)
    image = datasets_repo.get_image(session, image_id)
    if image is None:
        return Response(status_code=404)
    dataset = datasets_service.get_dataset(session, image.dataset_id)
    source = resolve_image(Path(dataset.image_root), image.file_path)
    if source is None or not source.is_file():
        return Response(status_code=404)
    media = request.app.state.settings.resolved_media_dir / "thumbs"
    target = media / f"{hashlib.sha256(str(source).encode()).hexdigest()[:24]}-{THUMB}.png"
    if not target.is_file():
        media.mkdir(parents=True, exist_ok=True)
        with PILImage.open(source) as img:
            small = img.convert("L")
            small.thumbnail((THUMB, THUMB))
            tmp = target.with_suffix(".tmp")
            small.save(tmp, format="PNG")
            tmp.replace(target)
    return FileResponse(
        target, media_type="image/png", headers={"cache-control": "private, max-age=86400"}
    )
