from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class PieSetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    dataset_id: int
    name: str
    version: int
    parameters: dict[str, Any]
    provenance: dict[str, Any]
    member_count: int
    pie_count: int
    created_at: datetime


class PieSetMemberRead(BaseModel):
    image_id: int
    external_id: str
    is_pie: bool
    score: float | None
    rank: int | None


class PieSetMemberPage(BaseModel):
    total: int
    items: list[PieSetMemberRead]
