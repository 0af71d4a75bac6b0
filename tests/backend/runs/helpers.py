"""What the runs tests share: a split dataset, starting runs, workers in process and as
processes, waiting."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.datasets.models import Dataset
from backend.db import make_sessionmaker
from backend.runs.models import Run
from backend.runs.worker import Worker
from tests.conftest import TINY_RUN
from tests.factories import make_split_dataset

ROOT = Path(__file__).resolve().parents[3]
TINY = TINY_RUN


def copy_store(store: Path, where: Path) -> Path:
    """A copy of the session's tiny store inside a test's folder (one the server may read)."""
    return Path(shutil.copytree(store, where / "tiny-store"))


class DatasetRef:
    """What the tests need of a dataset, read once (a SQLite session that reads holds the write
    lock until it ends, so the tests keep no ORM objects around)."""

    def __init__(self, ds: Dataset):
        self.id, self.image_root = ds.id, ds.image_root


def split_dataset(session: Session, root: Path, n: int = 60) -> DatasetRef:
    ref = DatasetRef(make_split_dataset(session, root, n))
    session.commit()
    return ref


def start(
    client: TestClient, headers: dict[str, str], ds: DatasetRef, **body: Any
) -> dict[str, Any]:
    payload = {"dataset_id": ds.id, "name": "regen", "params": TINY, **body}
    r = client.post("/api/runs", json=payload, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def worker(engine: Engine, settings: Settings, **kw: Any) -> Worker:
    kw.setdefault("lease_s", 5.0)
    kw.setdefault("heartbeat_s", 0.5)
    kw.setdefault("poll_s", 0.1)
    return Worker(make_sessionmaker(engine), settings, say=lambda _line: None, **kw)


def fetch(engine: Engine, run_id: int) -> Run:
    with make_sessionmaker(engine)() as s:
        run = s.get(Run, run_id)
        assert run is not None
        s.expunge(run)
        return run


def wait_for(what: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if what():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s: {message}")


class WorkerProcess:
    """A `piestudy worker` process whose output goes to a file (a pipe nobody reads would fill
    up and block the worker's prints)."""

    def __init__(self, proc: subprocess.Popen[str], output: Path):
        self.proc, self.output = proc, output

    def text(self) -> str:
        return self.output.read_text(errors="replace")


def wait_ready(w: WorkerProcess, timeout: float = 120) -> str:
    """The worker's id, once it says it is waiting for runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in w.text().splitlines():
            if "waiting for runs" in line:
                return line.split()[1]
        if w.proc.poll() is not None:
            raise AssertionError(f"the worker exited with {w.proc.returncode}:\n{w.text()}")
        time.sleep(0.1)
    raise AssertionError(f"the worker was not ready within {timeout:g} s:\n{w.text()}")
