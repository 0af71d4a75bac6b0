from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, and_, bindparam, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, contains_eager

from backend.datasets.models import Dataset, Image
from backend.reading.models import Answer, AnswerRevision, CaseView, ReaderSession
from backend.studies.models import Assignment, Reader, Study, StudyCase
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


class CaseAccess(NamedTuple):
    """Who a reader session is, and one of its cases: the image, the dataset's file and the
    current answer (the case fields are None where the reader has no case at that position)."""

    reader_id: int
    revoked_at: datetime | None
    client_key: str
    study_created_at: datetime
    total: int
    assignment_id: int | None
    position: int | None
    practice: bool | None
    image_id: int | None
    file_path: str | None
    labels: list[int] | None
    image_root: str | None
    classes: list[str] | None
    answered: bool  # an answer row exists (its columns below)
    agree: bool | None
    quality: int | None
    difficulty: int | None
    flagged: bool | None
    comment: str | None
    active_seconds: float | None
    completed_at: datetime | None
    updated_at: datetime | None


_TOTAL = (
    select(func.count())
    .select_from(Assignment)
    .where(Assignment.reader_id == Reader.id)
    .correlate(Reader)
    .scalar_subquery()
)


def _case_access(one: bool) -> Select[Any]:
    """The statement for one case (at :position) or for every case of the reader, in order."""
    on = Assignment.reader_id == Reader.id
    stmt = (
        select(
            Reader.id, Reader.revoked_at, Reader.client_key, Study.created_at, _TOTAL,
            Assignment.id, Assignment.position, StudyCase.practice, Image.id, Image.file_path,
            Image.labels, Dataset.image_root, Dataset.classes, Answer.id.is_not(None),
            Answer.agree, Answer.quality, Answer.difficulty, Answer.flagged, Answer.comment,
            Answer.active_seconds, Answer.completed_at, Answer.updated_at,
        )
        .select_from(ReaderSession)
        .join(Reader, Reader.id == ReaderSession.reader_id)
        .join(Study, Study.id == Reader.study_id)
        .outerjoin(Assignment, and_(on, Assignment.position == bindparam("position")) if one else on)
        .outerjoin(StudyCase, StudyCase.id == Assignment.case_id)
        .outerjoin(Image, Image.id == StudyCase.image_id)
        .outerjoin(Dataset, Dataset.id == Image.dataset_id)
        .outerjoin(Answer, Answer.assignment_id == Assignment.id)
        .where(ReaderSession.token_hash == bindparam("token_hash"))
    )  # fmt: skip
    return stmt if one else stmt.order_by(Assignment.position)


# Compiled once each: the reader's case and image requests (four a case), and the page's
# fetching ahead of every case.
_ONE_CASE, _EVERY_CASE = _case_access(True), _case_access(False)


def case_access(conn: Connection, token_hash: str, position: int) -> CaseAccess | None:
    """None for an unknown or ended session. Core, not the ORM: these are the most frequent
    requests of a reading session, and building ORM objects was most of their time."""
    row = conn.execute(_ONE_CASE, {"token_hash": token_hash, "position": position}).first()
    return None if row is None else CaseAccess(*row)


def every_case_access(conn: Connection, token_hash: str) -> list[CaseAccess]:
    """case_access for each of the session reader's cases, in order ([] for an unknown or
    ended session; one row without a case for a reader without cases)."""
    return [CaseAccess(*row) for row in conn.execute(_EVERY_CASE, {"token_hash": token_hash})]


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
    """One statement: the first view inserts the row, every later one counts itself in it (no
    lost view or duplicate key when two devices open the case at once)."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    stmt = (sqlite_insert if sqlite else postgresql_insert)(CaseView).values(
        assignment_id=assignment_id, first_opened_at=now, last_opened_at=now, open_count=1
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[CaseView.assignment_id],
            set_={"last_opened_at": now, "open_count": CaseView.open_count + 1},
        )
    )


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
