from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session, contains_eager

from backend.datasets.models import Dataset, Image
from backend.reading.models import Answer, AnswerRevision, CaseView, ReaderSession
from backend.studies.models import Assignment, Reader, StudyCase
from ml.data.labels import resolve_image


def reader_by_invitation(session: Session, token_hash: str) -> Reader | None:
    return session.scalars(select(Reader).where(Reader.token_hash == token_hash)).first()


def add(session: Session, obj: object) -> None:
    session.add(obj)
    session.flush()


def reader_by_session(session: Session, token_hash: str) -> Reader | None:
    # The study comes along in the same query: every reader request needs it.
    stmt = (
        select(Reader)
        .join(ReaderSession, ReaderSession.reader_id == Reader.id)
        .join(Reader.study)
        .options(contains_eager(Reader.study))
        .where(ReaderSession.token_hash == token_hash)
    )
    return session.scalars(stmt).first()


def end_sessions(session: Session, reader_id: int) -> None:
    session.execute(delete(ReaderSession).where(ReaderSession.reader_id == reader_id))


def end_session(session: Session, token_hash: str) -> None:
    session.execute(delete(ReaderSession).where(ReaderSession.token_hash == token_hash))


@dataclass(frozen=True)
class CaseState:
    position: int
    started: bool  # at least one question answered (a flag or a comment alone is no answer)
    complete: bool
    flagged: bool
    practice: bool


def case_states(session: Session, reader_id: int) -> list[CaseState]:
    """Where a reader stands on each of their cases, by position (columns only: no ORM rows)."""
    answered = or_(
        Answer.agree.is_not(None), Answer.quality.is_not(None), Answer.difficulty.is_not(None)
    )
    stmt = (
        select(
            Assignment.position, answered, Answer.completed_at, Answer.flagged, StudyCase.practice
        )
        .join(StudyCase, StudyCase.id == Assignment.case_id)
        .outerjoin(Answer, Answer.assignment_id == Assignment.id)
        .where(Assignment.reader_id == reader_id)
        .order_by(Assignment.position)
    )
    return [
        CaseState(position, bool(started), completed_at is not None, bool(flagged), practice)
        for position, started, completed_at, flagged, practice in session.execute(stmt)
    ]


def case_count(session: Session, reader_id: int) -> int:
    stmt = select(func.count()).select_from(Assignment).where(Assignment.reader_id == reader_id)
    return session.scalar(stmt) or 0


def assignment_at(
    session: Session, reader_id: int, position: int, *, for_update: bool = False
) -> Assignment | None:
    stmt = select(Assignment).where(
        Assignment.reader_id == reader_id, Assignment.position == position
    )
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


class CaseImage(NamedTuple):
    assignment_id: int
    image: Image
    dataset: Dataset
    practice: bool


def case_image(session: Session, reader_id: int, position: int) -> CaseImage | None:
    """The reader's case at `position`, its image and dataset: one query (every case and image
    request of a reader needs them)."""
    stmt = (
        select(Assignment.id, Image, Dataset, StudyCase.practice)
        .join(StudyCase, Assignment.case_id == StudyCase.id)
        .join(Image, StudyCase.image_id == Image.id)
        .join(Dataset, Dataset.id == Image.dataset_id)
        .where(Assignment.reader_id == reader_id, Assignment.position == position)
    )
    row = session.execute(stmt).first()
    return None if row is None else CaseImage(*row)


def answer_for(session: Session, assignment_id: int) -> Answer | None:
    return session.scalars(select(Answer).where(Answer.assignment_id == assignment_id)).first()


def revision_by_client_id(session: Session, client_answer_id: str) -> AnswerRevision | None:
    return session.scalars(
        select(AnswerRevision).where(AnswerRevision.client_answer_id == client_answer_id)
    ).first()


def revisions_of(session: Session, assignment_id: int) -> list[AnswerRevision]:
    return list(
        session.scalars(
            select(AnswerRevision)
            .where(AnswerRevision.assignment_id == assignment_id)
            .order_by(AnswerRevision.id)
        )
    )


def record_view(session: Session, assignment_id: int, now: datetime) -> None:
    view = session.get(CaseView, assignment_id)
    if view is None:
        session.add(CaseView(assignment_id=assignment_id, first_opened_at=now, last_opened_at=now))
    else:
        view.last_opened_at = now
        view.open_count += 1
    session.flush()


def study_sources(session: Session, study_id: int) -> list[tuple[Path, int]]:
    """The dataset file and database id of every image of the study's cases."""
    stmt = (
        select(Dataset.image_root, Image.file_path, Image.id)
        .join(StudyCase, StudyCase.image_id == Image.id)
        .join(Dataset, Dataset.id == Image.dataset_id)
        .where(StudyCase.study_id == study_id)
        .order_by(Image.id)
    )
    out = []
    for root, file_path, image_id in session.execute(stmt):
        path = resolve_image(Path(root), file_path)
        if path is not None and path.is_file():
            out.append((path, image_id))
    return out
