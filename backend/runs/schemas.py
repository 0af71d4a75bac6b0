from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from backend.db import MAX_ID
from backend.runs.models import RunStatus
from ml.executors import ExecutorName
from ml.runparams import RunOptions, Source


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_id: int = Field(ge=1, le=MAX_ID)
    name: str = Field(min_length=1, max_length=200, description="PIE set name (a new version)")
    source: Source = "train"
    executor: ExecutorName = "local"
    # declared once, in ml.runparams; `piestudy run start` derives its options from it too
    params: RunOptions = Field(default_factory=RunOptions)


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
    # not columns: where a queued run stands, and whether any worker would take it
    queue_position: int | None = Field(
        default=None, description="queued: its place in the queue (1: the next one taken)"
    )
    workers_alive: int = Field(default=0, description="workers heard of within 3 heartbeats")
    hint: str | None = Field(
        default=None, description="why a live run is not moving, and what to do (else null)"
    )


class WorkerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    host: str
    pid: int
    executor: str
    run_id: int | None
    started_at: datetime
    heartbeat_at: datetime
