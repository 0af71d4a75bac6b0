from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.runs.models import RunStatus


class RunParamsIn(BaseModel):
    """The parameters of a regeneration (what `ml.regenerate.RunParams` takes)."""

    model_config = ConfigDict(extra="forbid")

    seeds: list[int] = Field(default=[0, 1, 2], min_length=1, max_length=100)
    model: Literal["smallcnn", "resnet18", "resnet50"] = "smallcnn"
    image_size: int = Field(default=64, ge=16, le=1024)
    epochs: int = Field(default=8, ge=1, le=1000)
    patience: int = Field(default=3, ge=1, le=1000)
    batch_size: int = Field(default=64, ge=1, le=4096)
    lr: float = Field(default=1e-3, gt=0, lt=1)
    k_star: float = 0.9
    percentile: float = Field(default=5.0, gt=0, lt=100)
    min_keep: float = Field(default=0.0, ge=0, lt=0.5, description="Global MP per-layer minimum")
    method: Literal["l1", "random"] = "l1"
    threads: int = Field(default=1, ge=1, le=256, description="torch threads per seed task")
    store_path: str | None = Field(default=None, max_length=1000)
    reference_dir: str | None = Field(default=None, max_length=1000)
    reference_labels: str | None = Field(default=None, max_length=1000)


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_id: int
    name: str = Field(min_length=1, max_length=200, description="PIE set name (a new version)")
    source: Literal["train", "store", "reference"] = "train"
    executor: Literal["local", "ray"] = "local"
    params: RunParamsIn = Field(default_factory=RunParamsIn)


class RunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    dataset_id: int
    name: str
    source: str
    executor: str
    params: dict[str, Any]
    status: RunStatus
    stage: str
    progress: float
    log: str
    error: str | None
    timings: dict[str, Any]
    attempts: int
    worker_id: str | None
    heartbeat_at: datetime | None
    cancel_requested: bool
    result_pie_set_id: int | None
    created_by_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
