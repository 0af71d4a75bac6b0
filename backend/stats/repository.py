from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.datasets.models import Dataset, Image, shown_labels
from backend.piesets.models import PieSet, PieSetMember
from backend.reading.models import Answer, AnswerRevision, CaseView
from backend.studies.models import Assignment, Reader, Study, StudyCase
from backend.studies.repository import case_member


@dataclass(frozen=True)
class ReaderCase:
    """One case in one reader's list."""

    reader_id: int
    reader: str
    case_id: int
    image: str
    is_pie: bool
    is_overlap: bool
    position: int


@dataclass(frozen=True)
class ResponseRow(ReaderCase):
    """One reader x case, with the current answer (None fields where not given)."""

    agree: bool | None
    quality: int | None
    difficulty: int | None
    agree_at: datetime | None
    quality_at: datetime | None
    difficulty_at: datetime | None
    seconds_on_case: float | None
    completed_at: datetime | None
    revisions: int
    first_opened_at: datetime | None  # server time the reader first opened the case
    flagged: bool  # the reader flagged the case for review
    comment: str | None
    profile: dict[str, Any] | None  # the reader's answers to the study's profile questions
    reader_revoked: bool = False  # the coordinator withdrew the reader's invitation
    labels: tuple[str, ...] = ()  # the dataset's labels of the image, as the reader was shown them
    pie_score: float | None = None  # for coordinators only: never on a reader route
    pie_rank: int | None = None


def response_rows(session: Session, study: Study, *, chunk: int = 1000) -> Iterator[ResponseRow]:
    """Every reader x study case, by reader slot then position; streamed in chunks. Practice
    cases are not study cases: they are left out here, so of every export and statistic."""
    classes = session.execute(
        select(Dataset.classes).join(PieSet, PieSet.dataset_id == Dataset.id)
        .where(PieSet.id == study.pie_set_id)
    ).scalar_one()  # fmt: skip
    stmt = (
        select(
            Reader.id,
            Reader.display_name,
            StudyCase.id,
            Image.external_id,
            PieSetMember.is_pie,
            StudyCase.reader_id.is_(None),
            Assignment.position,
            Answer.agree,
            Answer.quality,
            Answer.difficulty,
            Answer.agree_at,
            Answer.quality_at,
            Answer.difficulty_at,
            Answer.active_seconds,
            Answer.completed_at,
            Answer.revision_count,
            CaseView.first_opened_at,
            Answer.flagged,
            Answer.comment,
            Reader.profile,
            Reader.revoked_at.is_not(None),
            Image.labels,
            PieSetMember.score,
            PieSetMember.rank,
        )
        .join(Assignment, Assignment.reader_id == Reader.id)
        .join(StudyCase, StudyCase.id == Assignment.case_id)
        .join(Image, Image.id == StudyCase.image_id)
        .join(PieSetMember, case_member(study))
        .outerjoin(Answer, Answer.assignment_id == Assignment.id)
        .outerjoin(CaseView, CaseView.assignment_id == Assignment.id)
        .where(Reader.study_id == study.id, StudyCase.practice.is_(False))
        .order_by(Reader.slot, Assignment.position)
        .execution_options(yield_per=chunk)
    )
    for row in session.execute(stmt):
        (rid, name, case_id, image, is_pie, overlap, pos, agree, quality, difficulty,
         agree_at, quality_at, difficulty_at, seconds, completed, revisions, opened, flagged,
         comment, profile, revoked, labels, score, rank) = row  # fmt: skip
        yield ResponseRow(
            rid, name, case_id, image, bool(is_pie), bool(overlap), pos, agree, quality, difficulty,
            agree_at, quality_at, difficulty_at, seconds, completed, revisions or 0, opened,
            bool(flagged), comment, profile, bool(revoked),
            tuple(shown_labels(classes, labels)), score, rank,
        )  # fmt: skip


@dataclass(frozen=True)
class RevisionRow(ReaderCase):
    """One save of one answer, as the server received it (the audit trail)."""

    practice: bool
    revision: int  # 1 for the case's first save by the reader, then 2, 3, ...
    client_answer_id: str
    agree: bool | None
    quality: int | None
    difficulty: int | None
    flagged: bool | None
    comment: str | None
    active_seconds: float
    client_sent_at: datetime | None
    received_at: datetime


def revision_rows(session: Session, study: Study, *, chunk: int = 1000) -> Iterator[RevisionRow]:
    """Every answer revision of the study, practice cases included (marked), by reader slot,
    position and arrival; streamed in chunks."""
    stmt = (
        select(
            Reader.id, Reader.display_name, StudyCase.id, Image.external_id, PieSetMember.is_pie,
            StudyCase.reader_id.is_(None), StudyCase.practice, Assignment.position,
            Assignment.id, AnswerRevision.client_answer_id, AnswerRevision.agree,
            AnswerRevision.quality, AnswerRevision.difficulty, AnswerRevision.flagged,
            AnswerRevision.comment, AnswerRevision.active_seconds, AnswerRevision.client_sent_at,
            AnswerRevision.received_at,
        )
        .join(Assignment, Assignment.reader_id == Reader.id)
        .join(AnswerRevision, AnswerRevision.assignment_id == Assignment.id)
        .join(StudyCase, StudyCase.id == Assignment.case_id)
        .join(Image, Image.id == StudyCase.image_id)
        .outerjoin(
PieSetMember, case_member(study))
        .where(Reader.study_id == study.id)
        .order_by(Reader.slot, Assignment.position, AnswerRevision.received_at, AnswerRevision.id)
        .execution_options(yield_per=chunk)
    )  # fmt: skip
    last, revision = None, 0
    for row in session.execute(stmt):
        (rid, name, case_id, image, is_pie, overlap, practice, position, assignment, answer_id,
         agree, quality, difficulty, flagged, comment, seconds, sent, received) = row  # fmt: skip
        revision = revision + 1 if assignment == last else 1
        last = assignment
        yield RevisionRow(
            rid, name, case_id, image, bool(is_pie), bool(overlap), position, bool(practice),
            revision, answer_id, agree, quality, difficulty, flagged, comment, seconds, sent,
            received,
        )  # fmt: skip
