"""Every table, imported in one place so that Base.metadata is complete (Alembic, tests)."""

from backend.auth.models import AuthSession, SignInFailure, User
from backend.datasets.models import Dataset, Image
from backend.db import Base
from backend.piesets.models import PieSet, PieSetMember
from backend.reading.models import Answer, AnswerRevision, CaseView, ReaderSession
from backend.runs.models import Run, WorkerBeat
from backend.studies.models import Assignment, Reader, Study, StudyCase, StudyMember

__all__ = [
    "Answer",
    "AnswerRevision",
    "Assignment",
    "AuthSession",
    "Base",
    "CaseView",
    "Dataset",
    "Image",
    "PieSet",
    "PieSetMember",
    "Reader",
    "ReaderSession",
    "Run",
    "SignInFailure",
    "Study",
    "StudyCase",
    "StudyMember",
    "User",
    "WorkerBeat",
]
