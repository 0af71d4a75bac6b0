"""The runs tests' worker processes."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backend.cli.server import worker_command
from backend.config import Settings
from tests.backend.runs.helpers import (
    ROOT,
    WorkerProcess,
)


@pytest.fixture
def spawn(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `piestudy worker` processes on the test database; all are stopped at the end."""
    procs: list[WorkerProcess] = []
    env = {
        **os.environ,
        "PIESTUDY_DATABASE_URL": settings.database_url,
        "PIESTUDY_VAR_DIR": str(settings.var_dir),
        "PIESTUDY_IMPORT_ROOTS": json.dumps([str(r) for r in settings.import_roots]),
        "PYTHONUNBUFFERED": "1",
    }

    def run(*args: str) -> WorkerProcess:
        cmd = [*worker_command(), "--heartbeat", "0.5", "--poll", "0.2"]  # the demo's worker
        output = tmp_path / f"worker-{len(procs)}.log"
        with output.open("w") as out:
            proc = subprocess.Popen(
                [*cmd, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
            )
        procs.append(WorkerProcess(proc, output))
        return procs[-1]

    yield run
    for w in procs:
        if w.proc.poll() is None:
            w.proc.kill()
        w.proc.wait(timeout=30)
