from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ml.data.labels import LabelFormat

NAME_PATTERN = r"^[^\x00-\x1f]{1,200}$"


class DatasetImport(BaseModel):
    """Import label files and an image folder that lie on the server (under PIESTUDY_IMPORT_ROOTS)."""

    name: str = Field(pattern=NAME_PATTERN, min_length=1, max_length=200)
    format: LabelFormat
    labels_files: list[str] = Field(min_length=1, max_length=10)
    image_dir: str = Field(min_length=1, max_length=1000)
    split_file: str | None = Field(default=None, max_length=1000)
    classes: list[str] | None = Field(
        default=None, description="plain format only: the class list, in order"
    )


class DatasetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    label_format: str
    classes: list[str]
    image_root: str
    image_count: int
    provenance: dict[str, Any]
    created_at: datetime


class ImageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    external_id: str
    file_path: str
    labels: list[int]
    patient_id: str | None
    split: str | None
    meta: dict[str, Any]


class ImagePage(BaseModel):
    total: int
    items: list[ImageRead]
