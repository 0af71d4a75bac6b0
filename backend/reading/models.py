from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, Text
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base, UTCDateTime
from backend.timeutil import utcnow


class ReaderSession(Base):
    """A browser's session for one reader, made from the invitation link; hashed like all tokens."""

    __tablename__ = "reader_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CaseView(Base):
    """When the server first and last showed a reader a case (server-side timing)."""

    __tablename__ = "case_views"

    assignment_id: Mapped[int] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE"), primary_key=True
    )
    first_opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    open_count: Mapped[int] = mapped_column(default=1)


class Answer(Base):
    """The current answer of one reader to one case: the latest value of each question."""

    __tablename__ = "answers"
    __table_args__ = (
        CheckConstraint("quality IS NULL OR (quality >= 1 AND quality <= 5)", name="quality_range"),
        CheckConstraint(
            "difficulty IS NULL OR (difficulty >= 1 AND difficulty <= 5)", name="difficulty_range"
        ),
        CheckConstraint("active_seconds >= 0", name="active_seconds_nonnegative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE"), unique=True
    )
    agree: Mapped[bool | None]
    quality: Mapped[int | None]
    difficulty: Mapped[int | None]
    # when the current value of each question was given (server time)
    agree_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    quality_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    difficulty_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # the reader's own notes on the case: never required, never an answer
    flagged: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    comment: Mapped[str | None] = mapped_column(Text)
    revision_count: Mapped[int] = mapped_column(default=0)
    first_answered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AnswerRevision(Base):
    """Every save, as sent, in order: append-only. client_answer_id makes retries idempotent."""

    __tablename__ = "answer_revisions"
    __table_args__ = (
        Index("ix_answer_revisions_assignment_id_received_at", "assignment_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_answer_id: Mapped[str] = mapped_column(String(64), unique=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    agree: Mapped[bool | None]
    quality: Mapped[int | None]
    difficulty: Mapped[int | None]
    flagged: Mapped[bool | None]
    comment: Mapped[str | None] = mapped_column(Text)
    active_seconds: Mapped[float] = mapped_column(Float)
    client_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
