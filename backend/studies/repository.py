from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, delete, func, insert, or_, select
from sqlalchemy.orm import Session

from backend.datasets.models import Image
from backend.piesets.models import PieSetMember
from backend.studies.models import Assignment, Reader, Study, StudyCase, StudyMember


def get(session: Session, study_id: int, *, for_update: bool = False) -> Study | None:
    if for_update:
        return session.scalars(select(Study).where(Study.id == study_id).with_for_update()).first()
    return session.get(Study, study_id)


def get_by_name(session: Session, name: str) -> Study | None:
    return session.scalars(select(Study).where(Study.name == name).order_by(Study.id)).first()


def list_visible(session: Session, user_id: int | None) -> Sequence[Study]:
    """All studies (user_id None) or those the user owns or was added to."""
    stmt = select(Study).order_by(Study.id)
    if user_id is not None:
        member_of = select(StudyMember.study_id).where(StudyMember.user_id == user_id)
        stmt = stmt.where(or_(Study.owner_id == user_id, Study.id.in_(member_of)))
    return session.scalars(stmt).all()


def is_member(session: Session, study_id: int, user_id: int) -> bool:
    return session.get(StudyMember, (study_id, user_id)) is not None


def add(session: Session, obj: Any) -> None:
    session.add(obj)
    session.flush()


def remove_member(session: Session, study_id: int, user_id: int) -> None:
    session.execute(
        delete(StudyMember).where(StudyMember.study_id == study_id, StudyMember.user_id == user_id)
    )


def members(session: Session, study_id: int) -> Sequence[int]:
    return session.scalars(
        select(StudyMember.user_id).where(StudyMember.study_id == study_id)
    ).all()


def next_slot(session: Session, study_id: int) -> int:
    current = session.scalar(select(func.max(Reader.slot)).where(Reader.study_id == study_id))
    return 0 if current is None else current + 1


def readers(session: Session, study_id: int) -> Sequence[Reader]:
    return session.scalars(
        select(Reader).where(Reader.study_id == study_id).order_by(Reader.slot)
    ).all()


def get_reader(session: Session, study_id: int, reader_id: int) -> Reader | None:
    reader = session.get(Reader, reader_id)
    return reader if reader is not None and reader.study_id == study_id else None


def insert_cases(
    session: Session,
    study_id: int,
    image_ids: Sequence[int],
    reader_id: int | None,
    *,
    practice: bool = False,
) -> list[int]:
    """Insert study cases in the given order; their ids, in the same order."""
    if not image_ids:
        return []
    rows = [
        {"study_id": study_id, "image_id": i, "reader_id": reader_id, "practice": practice}
        for i in image_ids
    ]
    session.execute(insert(StudyCase), rows)
    stmt = select(StudyCase.image_id, StudyCase.id).where(
        StudyCase.study_id == study_id, StudyCase.image_id.in_(image_ids)
    )
    by_image = dict(session.execute(stmt).all())
    return [by_image[i] for i in image_ids]


class SharedCase(NamedTuple):
    case_id: int
    image_id: int


def shared_cases(session: Session, study_id: int, *, practice: bool) -> list[SharedCase]:
    """The study's cases that every reader reads: the overlap cases, or the practice cases."""
    stmt = select(StudyCase.id, StudyCase.image_id).where(
        StudyCase.study_id == study_id,
        StudyCase.reader_id.is_(None),
        StudyCase.practice.is_(practice),
    )
    return [SharedCase(c, i) for c, i in session.execute(stmt).all()]


def insert_assignments(session: Session, reader_id: int, case_ids_in_order: Sequence[int]) -> None:
    rows = [
        {"reader_id": reader_id, "case_id": c, "position": p}
        for p, c in enumerate(case_ids_in_order, 1)
    ]
    if rows:
        session.execute(insert(Assignment), rows)


class AssignedCase(NamedTuple):
    position: int
    image_id: int
    external_id: str
    is_pie: bool
    is_overlap: bool
    is_practice: bool


def case_member(study: Study) -> ColumnElement[bool]:
    """Joins a study case to its image's row in the study's PIE set."""
    return (PieSetMember.image_id == StudyCase.image_id) & (
        PieSetMember.pie_set_id == study.pie_set_id
    )


def assignments(session: Session, study: Study, reader_id: int) -> list[AssignedCase]:
    """One reader's cases, by position (for the coordinator: they name the images)."""
    stmt = (
        select(
            Assignment.position,
            Image.id,
            Image.external_id,
            PieSetMember.is_pie,
            StudyCase.reader_id.is_(None) & StudyCase.practice.is_(False),
            StudyCase.practice,
        )
        .join(StudyCase, StudyCase.id == Assignment.case_id)
        .join(Image, Image.id == StudyCase.image_id)
        .join(PieSetMember, case_member(study))
        .where(Assignment.reader_id == reader_id)
        .order_by(Assignment.position)
    )
    return [
        AssignedCase(p, i, e, bool(pie), bool(ov), bool(pr))
        for p, i, e, pie, ov, pr in session.execute(stmt).all()
    ]


def case_count(session: Session, study_id: int) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(StudyCase).where(StudyCase.study_id == study_id)
        )
        or 0
    )


def profiles_given(session: Session, study_id: int) -> int:
    stmt = (
        select(func.count())
        .select_from(Reader)
        .where(Reader.study_id == study_id, Reader.profile_at.is_not(None))
    )
    return session.scalar(stmt) or 0


def reader_count(session: Session, study_id: int) -> int:
    return (
        session.scalar(select(func.count()).select_from(Reader).where(Reader.study_id == study_id))
        or 0
    )


class AssignmentProgress(NamedTuple):
    reader_id: int
    assignment_id: int
    active_seconds: float | None
    complete: bool
    last_save: datetime | None


def reader_progress_rows(session: Session, study_id: int) -> list[AssignmentProgress]:
    """How far each study assignment of the study's readers has got (practice left out)."""
    from backend.reading.models import Answer, AnswerRevision

    last_save = (
        select(AnswerRevision.assignment_id, func.max(AnswerRevision.received_at).label("last"))
        .group_by(AnswerRevision.assignment_id)
        .subquery()
    )
    stmt = (
        select(
            Assignment.reader_id,
            Assignment.id,
            Answer.active_seconds,
            Answer.completed_at.is_not(None),
            last_save.c.last,
        )
        .join(Reader, Reader.id == Assignment.reader_id)
        .join(StudyCase, StudyCase.id == Assignment.case_id)
        .outerjoin(Answer, Answer.assignment_id == Assignment.id)
        .outerjoin(last_save, last_save.c.assignment_id == Assignment.id)
        .where(Reader.study_id == study_id, StudyCase.practice.is_(False))
    )
    return [
        AssignmentProgress(r, a, s, bool(c), last)
        for r, a, s, c, last in session.execute(stmt).all()
    ]
