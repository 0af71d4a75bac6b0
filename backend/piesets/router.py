from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile

from backend.auth.deps import DataReader, ResearcherUser
from backend.db import IdPath, SessionDep
from backend.errors import InvalidInputError
from backend.piesets import service
from backend.piesets.compare import compare_pie_sets
from backend.piesets.schemas import PieSetMemberPage, PieSetMemberRead, PieSetRead

router = APIRouter(prefix="/api/piesets", tags=["piesets"])


def _json_object(raw: str | None, field: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{field}: not valid JSON ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise InvalidInputError(f"{field}: must be a JSON object")
    return value


@router.get("", response_model=list[PieSetRead])
def list_pie_sets(
    session: SessionDep, _user: DataReader, dataset_id: int | None = None
) -> list[PieSetRead]:
    return [PieSetRead.model_validate(p) for p in service.list_pie_sets(session, dataset_id)]


@router.post("/import", response_model=PieSetRead, status_code=201)
async def import_pie_set(
    request: Request,
    session: SessionDep,
    user: ResearcherUser,
    dataset_id: Annotated[int, Form()],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    file: Annotated[UploadFile, File(description="CSV image,is_pie,score[,rank]")],
    parameters: Annotated[str | None, Form(description="JSON object")] = None,
    report: Annotated[
        UploadFile | None, File(description="report.html of `piestudy ml report`")
    ] = None,
) -> PieSetRead:
    data = await file.read(service.MAX_CSV_BYTES + 1)
    report_html = await report.read(service.MAX_REPORT_BYTES + 1) if report is not None else None
    pie_set = service.import_pie_set(
        session,
        dataset_id=dataset_id,
        name=name,
        csv_bytes=data,
        source_name=file.filename or "pieset.csv",
        parameters=_json_object(parameters, "parameters"),
        created_by_id=user.id,
        report_html=report_html,
        media_dir=request.app.state.settings.resolved_media_dir,
    )
    return PieSetRead.model_validate(pie_set)


@router.get("/compare")
def compare(
    request: Request, session: SessionDep, _user: DataReader,
    id: Annotated[list[int], Query(description="2 to 6 PIE set ids of one dataset")],
) -> dict[str, Any]:  # fmt: skip
    """PIE sets side by side: PIE overlap (Jaccard) and score correlation per pair, and the
    forgettability curves of those whose run's prediction store is on the server."""
    return compare_pie_sets(session, id, request.app.state.settings)


@router.get("/{pie_set_id}", response_model=PieSetRead)
def get_pie_set(pie_set_id: IdPath, session: SessionDep, _user: DataReader) -> PieSetRead:
    return PieSetRead.model_validate(service.get_pie_set(session, pie_set_id))


@router.get("/{pie_set_id}/members", response_model=PieSetMemberPage)
def list_members(
    pie_set_id: IdPath,
    session: SessionDep,
    _user: DataReader,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    is_pie: bool | None = None,
) -> PieSetMemberPage:
    total, rows = service.page_members(
        session, pie_set_id, offset=offset, limit=limit, is_pie=is_pie
    )
    return PieSetMemberPage(
        total=total,
        items=[
            PieSetMemberRead(
                image_id=m.image_id, external_id=ext, is_pie=m.is_pie, score=m.score, rank=m.rank
            )
            for m, ext in rows
        ],
    )
