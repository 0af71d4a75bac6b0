from __future__ import annotations

import enum
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.db import Base, UTCDateTime
from backend.timeutil import utcnow


def new_client_key() -> str:
    return secrets.token_hex(16)


class StudyStatus(enum.StrEnum):
    draft = "draft"
    open = "open"
    closed = "closed"


class Study(Base):
    __tablename__ = "studies"
    __table_args__ = (
        CheckConstraint("cases_per_reader >= 1", name="cases_per_reader_positive"),
        CheckConstraint("pie_fraction >= 0 AND pie_fraction <= 1", name="pie_fraction_range"),
        CheckConstraint("overlap_cases >= 0", name="overlap_cases_nonnegative"),
        CheckConstraint("planned_readers >= 1", name="planned_readers_positive"),
        CheckConstraint("practice_cases >= 0", name="practice_cases_nonnegative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    pie_set_id: Mapped[int] = mapped_column(
        ForeignKey("pie_sets.id", ondelete="RESTRICT"), index=True
    )
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    cases_per_reader: Mapped[int] = mapped_column(default=40)
    pie_fraction: Mapped[float] = mapped_column(Float, default=0.5)
    overlap_cases: Mapped[int] = mapped_column(default=0)
    planned_readers: Mapped[int] = mapped_column(default=6)
    # Cases every reader reads first, to learn the screen; never exported or counted.
    practice_cases: Mapped[int] = mapped_column(default=0, server_default="0")
    # The viewer's window presets (backend.studies.presets); None: the default ones.
    window_presets: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # The questions each reader answers once about themselves (backend.studies.profile).
    profile_fields: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list, server_default="[]"
    )
    seed: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[StudyStatus] = mapped_column(
        Enum(StudyStatus, name="study_status", native_enum=False, length=10, validate_strings=True),
        default=StudyStatus.draft,
    )
    allow_answer_changes: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StudyMember(Base):
    """A coordinator added to a study besides its owner."""

    __tablename__ = "study_members"

    study_id: Mapped[int] = mapped_column(
        ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Reader(Base):
    __tablename__ = "readers"
    __table_args__ = (UniqueConstraint("study_id", "slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    slot: Mapped[int]  # which slice of the shuffled pools this reader holds
    display_name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # An opaque, random name of this reader for their browser: it keys the answers waiting there
    # and goes with each of them, so that no answer is ever sent as, or shown to, another reader.
    # Unlike the link it survives a new link, and it is no credential.
    client_key: Mapped[str] = mapped_column(String(32), unique=True, default=new_client_key)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The reader's answers to the study's profile questions, given once (None until then).
    profile: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    profile_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Read-only: a many-to-one that every reader request follows (loaded with the reader there).
    study: Mapped[Study] = relationship(viewonly=True)


class StudyCase(Base):
    """An image drawn into a study. unique(study_id, image_id) is what guarantees, in the
    database itself, that no image reaches two readers; reader_id is NULL for the shared
    overlap cases and the practice cases, which every reader reads."""

    __tablename__ = "study_cases"
    __table_args__ = (UniqueConstraint("study_id", "image_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="RESTRICT"), index=True)
    reader_id: Mapped[int | None] = mapped_column(
        ForeignKey("readers.id", ondelete="CASCADE"), index=True
    )
    # A practice case is read first and answered like any other, but left out of every export,
    # statistic and progress count.
    practice: Mapped[bool] = mapped_column(default=False, server_default=false())


class Assignment(Base):
    """A case in one reader's list, at its position (1-based) in that reader's order."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("reader_id", "position"),
        UniqueConstraint("reader_id", "case_id"),
        CheckConstraint("position >= 1", name="position_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"))
    case_id: Mapped[int] = mapped_column(
        ForeignKey("study_cases.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int]
