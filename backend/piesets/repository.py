from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from backend.datasets.models import Image
from backend.piesets.models import PieSet, PieSetMember


def get(session: Session, pie_set_id: int) -> PieSet | None:
    return session.get(PieSet, pie_set_id)


def list_all(session: Session, dataset_id: int | None = None) -> Sequence[PieSet]:
    stmt = select(PieSet).order_by(PieSet.id)
    if dataset_id is not None:
        stmt = stmt.where(PieSet.dataset_id == dataset_id)
    return session.scalars(stmt).all()


def latest_version(session: Session, dataset_id: int, name: str) -> int:
    stmt = select(func.max(PieSet.version)).where(
        PieSet.dataset_id == dataset_id, PieSet.name == name
    )
    return session.scalar(stmt) or 0


def add(session: Session, pie_set: PieSet) -> None:
    session.add(pie_set)
    session.flush()


def insert_members(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    batch = list(rows)
    for start in range(0, len(batch), 5000):
        session.execute(insert(PieSetMember), batch[start : start + 5000])


class MemberRow(NamedTuple):
    member: PieSetMember
    external_id: str


class PoolImage(NamedTuple):
    external_id: str
    image_id: int


def page_members(
    session: Session, pie_set_id: int, *, offset: int, limit: int, is_pie: bool | None
) -> tuple[int, list[MemberRow]]:
    where = [PieSetMember.pie_set_id == pie_set_id]
    if is_pie is not None:
        where.append(PieSetMember.is_pie == is_pie)
    total = session.scalar(select(func.count()).select_from(PieSetMember).where(*where)) or 0
    stmt = (
        select(PieSetMember, Image.external_id)
        .join(Image, Image.id == PieSetMember.image_id)
        .where(*where)
        .order_by(PieSetMember.rank.is_(None), PieSetMember.rank, Image.external_id)
        .offset(offset)
        .limit(limit)
    )
    return total, [MemberRow(m, ext) for m, ext in session.execute(stmt).all()]


def members_by_group(session: Session, pie_set_id: int) -> tuple[list[PoolImage], list[PoolImage]]:
    """(external id, image id) of the PIEs and of the non-PIEs, each sorted by external id."""
    stmt = (
        select(Image.external_id, PieSetMember.image_id, PieSetMember.is_pie)
        .join(Image, Image.id == PieSetMember.image_id)
        .where(PieSetMember.pie_set_id == pie_set_id)
        .order_by(Image.external_id)
    )
    pies: list[PoolImage] = []
    non_pies: list[PoolImage] = []
    for ext, image_id, is_pie in session.execute(stmt).all():
        (pies if is_pie else non_pies).append(PoolImage(ext, image_id))
    return pies, non_pies
