from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base, UTCDateTime
from backend.timeutil import utcnow


class PieSet(Base):
    """A frozen set of PIE / non-PIE images; new results make a new version, never an edit."""

    __tablename__ = "pie_sets"
    __table_args__ = (UniqueConstraint("dataset_id", "name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int]
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    member_count: Mapped[int] = mapped_column(default=0)
    pie_count: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PieSetMember(Base):
    __tablename__ = "pie_set_members"
    __table_args__ = (
        UniqueConstraint("pie_set_id", "image_id"),
        Index("ix_pie_set_members_pie_set_id_is_pie", "pie_set_id", "is_pie"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pie_set_id: Mapped[int] = mapped_column(ForeignKey("pie_sets.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="RESTRICT"), index=True)
    is_pie: Mapped[bool]
    score: Mapped[float | None] = mapped_column(Float)  # None: undefined (constant prediction row)
    rank: Mapped[int | None]
