from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from backend.auth.deps import CoordinatorUser
from backend.db import IdPath, SessionDep
from backend.stats import export, service
from backend.stats.repository import ResponseRow
from backend.stats.schemas import PowerRead, PowerRequest, StudyStats
from backend.studies.models import Study
from backend.studies.service import visible_study

router = APIRouter(prefix="/api/studies", tags=["results"])

_FORMATS: dict[str, tuple[str, str, Callable[[Study, Iterable[ResponseRow]], Iterator[str]]]] = {
    "long": ("text/csv; charset=utf-8", "csv", export.long_csv),
    "wide": ("text/csv; charset=utf-8", "csv", export.wide_csv),
    "json": ("application/json", "json", export.as_json),
}


@router.post("/power", response_model=PowerRead)
def plan_power(body: PowerRequest, _user: CoordinatorUser) -> PowerRead:
    """The power of a planned design under an assumed effect, by seeded simulation of the
    analysis the study will get (the same seed gives the same answer)."""
    return service.plan_power(body)


@router.get("/{study_id}/stats", response_model=StudyStats)
def study_stats(
    study_id: IdPath,
    session: SessionDep,
    user: CoordinatorUser,
    include: Annotated[
        Literal["complete", "all"],
        Query(
            description="complete: cases with all three answers (the default); all: every answer"
        ),
    ] = "complete",
    exclude_reader: Annotated[
        list[int], Query(description="reader ids left out (withdrawn readers, for example)")
    ] = [],  # noqa: B006 (FastAPI copies it)
) -> StudyStats:
    return service.study_stats(
        session, visible_study(session, user, study_id), rule=include,
        exclude_readers=exclude_reader,
    )  # fmt: skip


@router.get("/{study_id}/export", response_class=StreamingResponse)
def export_responses(
    study_id: IdPath,
    request: Request,
    session: SessionDep,
    user: CoordinatorUser,
    format: Literal["long", "wide", "json"] = "long",
) -> StreamingResponse:
    """Streamed: the response starts at once and memory stays flat for any study size."""
    study = visible_study(session, user, study_id)
    media_type, extension, render = _FORMATS[format]
    factory: sessionmaker[Session] = request.app.state.read_sessionmaker

    def body() -> Iterator[str]:
        yield from render(study, service.streamed_response_rows(factory, study))

    return StreamingResponse(
        body(), media_type=media_type, headers=export.download_headers(study, format, extension)
    )


@router.get("/{study_id}/audit", response_class=StreamingResponse)
def export_audit(
    study_id: IdPath, request: Request, session: SessionDep, user: CoordinatorUser
) -> StreamingResponse:
    """Every revision of every answer with its timestamps, as CSV (streamed)."""
    study = visible_study(session, user, study_id)
    factory: sessionmaker[Session] = request.app.state.read_sessionmaker

    def body() -> Iterator[str]:
        yield from export.audit_csv(study, service.streamed_revision_rows(factory, study))

    return StreamingResponse(
        body(), media_type="text/csv", headers=export.download_headers(study, "audit", "csv")
    )
