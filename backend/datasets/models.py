from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.db import Base, UTCDateTime
from backend.timeutil import utcnow


def shown_labels(classes: list[str], labels: list[int]) -> list[str]:
    """The names of an image's labels, in the dataset's class order: what a reader is shown."""
    return [c for c, v in zip(classes, labels, strict=True) if v]


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    label_format: Mapped[str] = mapped_column(String(40))
    classes: Mapped[list[str]] = mapped_column(JSON)
    image_root: Mapped[str] = mapped_column(String(1000))
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    image_count: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    images: Mapped[list[Image]] = relationship(back_populates="dataset", passive_deletes=True)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("dataset_id", "external_id"),
        Index("ix_images_dataset_id_split", "dataset_id", "split"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(500))
    file_path: Mapped[str] = mapped_column(String(1000))  # relative to Dataset.image_root
    labels: Mapped[list[int]] = mapped_column(JSON)  # 0/1, aligned with Dataset.classes
    patient_id: Mapped[str | None] = mapped_column(String(100))
    split: Mapped[str | None] = mapped_column(String(10))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    dataset: Mapped[Dataset] = relationship(back_populates="images")
