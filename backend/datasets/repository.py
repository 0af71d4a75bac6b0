from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from backend.datasets.models import Dataset, Image


def get(session: Session, dataset_id: int) -> Dataset | None:
    return session.get(Dataset, dataset_id)


def lock(session: Session, dataset_id: int) -> None:
    """Hold the dataset's row until the transaction ends (FOR UPDATE; on SQLite the write lock
    that every writing transaction takes at BEGIN does the same)."""
    session.execute(select(Dataset.id).where(Dataset.id == dataset_id).with_for_update())


def get_by_name(session: Session, name: str) -> Dataset | None:
    return session.scalars(select(Dataset).where(Dataset.name == name)).first()


def list_all(session: Session) -> Sequence[Dataset]:
    return session.scalars(select(Dataset).order_by(Dataset.id)).all()


def add(session: Session, dataset: Dataset) -> None:
    session.add(dataset)
    session.flush()


def insert_images(session: Session, rows: Iterable[dict[str, Any]], chunk: int = 5000) -> None:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= chunk:
            session.execute(insert(Image), batch)
            batch = []
    if batch:
        session.execute(insert(Image), batch)


def count_images(session: Session, dataset_id: int, split: str | None = None) -> int:
    stmt = select(func.count()).select_from(Image).where(Image.dataset_id == dataset_id)
    if split is not None:
        stmt = stmt.where(Image.split == split)
    return session.scalar(stmt) or 0


def page_images(
    session: Session, dataset_id: int, *, offset: int, limit: int, split: str | None
) -> Sequence[Image]:
    stmt = select(Image).where(Image.dataset_id == dataset_id)
    if split is not None:
        stmt = stmt.where(Image.split == split)
    return session.scalars(stmt.order_by(Image.id).offset(offset).limit(limit)).all()


def image_ids_by_external(session: Session, dataset_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Image.external_id, Image.id).where(Image.dataset_id == dataset_id)
    ).all()
    return {ext: image_id for ext, image_id in rows}


def get_image(session: Session, image_id: int) -> Image | None:
    return session.get(Image, image_id)


def images_by_ids(session: Session, ids: list[int]) -> Sequence[Image]:
    if not ids:
        return []
    return session.scalars(select(Image).where(Image.id.in_(ids))).all()


def all_images(session: Session, dataset_id: int) -> Sequence[Image]:
    """Every image of the dataset, in id order."""
    return session.scalars(
        select(Image).where(Image.dataset_id == dataset_id).order_by(Image.id)
    ).all()
