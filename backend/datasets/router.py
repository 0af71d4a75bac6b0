from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request

from backend.auth.deps import DataReader, ResearcherUser
from backend.config import Settings
from backend.datasets import service
from backend.datasets.schemas import DatasetImport, DatasetRead, ImagePage, ImageRead
from backend.db import IdPath, SessionDep
from backend.errors import ForbiddenError

router = APIRouter(prefix="/api/datasets", tags=["datasets"])


def _allowed_path(settings: Settings, raw: str, field: str) -> Path:
    """A server path the API may read: inside one of PIESTUDY_IMPORT_ROOTS."""
    if not settings.import_roots:
        raise ForbiddenError(
            "imports through the API are off: set PIESTUDY_IMPORT_ROOTS to the folders it may "
            "read, or use `piestudy dataset import` on the server"
        )
    if not settings.may_read(Path(raw)):
        raise ForbiddenError(f"{field}: {raw!r} is outside PIESTUDY_IMPORT_ROOTS")
    return Path(raw).resolve()


@router.get("", response_model=list[DatasetRead])
def list_datasets(session: SessionDep, _user: DataReader) -> list[DatasetRead]:
    return [DatasetRead.model_validate(d) for d in service.list_datasets(session)]


@router.post("/import", response_model=DatasetRead, status_code=201)
def import_dataset(
    body: DatasetImport, request: Request, session: SessionDep, user: ResearcherUser
) -> DatasetRead:
    settings: Settings = request.app.state.settings
    dataset = service.import_dataset(
        session,
        name=body.name,
        fmt=body.format,
        labels_files=[
            _allowed_path(settings, f, f"labels_files[{i}]")
            for i, f in enumerate(body.labels_files)
        ],
        image_dir=_allowed_path(settings, body.image_dir, "image_dir"),
        split_file=_allowed_path(settings, body.split_file, "split_file")
        if body.split_file
        else None,
        classes=body.classes,
        created_by_id=user.id,
    )
    return DatasetRead.model_validate(dataset)


@router.get("/{dataset_id}", response_model=DatasetRead)
def get_dataset(dataset_id: IdPath, session: SessionDep, _user: DataReader) -> DatasetRead:
    return DatasetRead.model_validate(service.get_dataset(session, dataset_id))


@router.get("/{dataset_id}/images", response_model=ImagePage)
def list_images(
    dataset_id: IdPath,
    session: SessionDep,
    _user: DataReader,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    split: Annotated[str | None, Query(pattern="^(train|val|test)$")] = None,
) -> ImagePage:
    total, images = service.page_images(
        session, dataset_id, offset=offset, limit=limit, split=split
    )
    return ImagePage(total=total, items=[ImageRead.model_validate(i) for i in images])
