"""`piestudy worker` processes: two on one queue, kill -9 and resume, cancel, SIGTERM."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from backend.auth.models import Role
from backend.config import Settings
from backend.piesets.models import PieSet
from backend.runs.models import RunStatus
from backend.runs.service import work_dir
from tests.backend.runs.helpers import (
    TINY,
    WorkerProcess,
    copy_store,
    fetch,
    split_dataset,
    start,
    wait_for,
    wait_ready,
)
from tests.conftest import Users


@pytest.mark.database  # claims: SKIP LOCKED on PostgreSQL, the write lock on SQLite
@pytest.mark.slow
def test_two_worker_processes_never_run_the_same_run(
    client: TestClient, users: Users, session: Session, tmp_path: Path, engine: Engine,
    settings: Settings, spawn: Callable[..., WorkerProcess], tiny_store: Path,
) -> None:  # fmt: skip
    ds = split_dataset(session, tmp_path)
    researcher = users.headers("rita", Role.researcher)
    # six analysis-only runs from one trained store, for two workers to compete for
    store = copy_store(tiny_store, tmp_path)
    a, b = spawn(), spawn()
    ids = {wait_ready(a), wait_ready(b)}
    assert len(ids) == 2
    runs = [
        start(client, researcher, ds, source="store", params={"store_path": str(store)})["id"]
        for _ in range(6)
    ]
    wait_for(
        lambda: all(fetch(engine, r).status == RunStatus.succeeded for r in runs), 120,
        "six runs succeeded",
    )  # fmt: skip
    finished = [fetch(engine, r) for r in runs]
    twice = [
        (
            r.id,
            r.attempts,
            [line for line in r.log.splitlines() if "claim" in line or "queue" in line],
        )
        for r in finished
        if r.attempts != 1 or r.log.count("claimed by worker") != 1
    ]
    outputs = "\n".join(w.text() for w in (a, b))
    assert not twice, (twice, outputs)  # each such run, its claims, and what the workers said
    assert {r.worker_id for r in finished} == ids  # both took part
    session.rollback()
    versions = sorted(p.version for p in session.scalars(select(PieSet)).all())
    session.rollback()
    assert versions == list(range(1, 7))  # one PIE set per run, none twice


@pytest.mark.slow
def test_a_killed_worker_s_run_is_requeued_and_resumed_without_retraining(
    client: TestClient, users: Users, session: Session, tmp_path: Path, engine: Engine,
    settings: Settings, spawn: Callable[..., WorkerProcess],
) -> None:  # fmt: skip
    ds = split_dataset(session, tmp_path)
    researcher = users.headers("rita", Role.researcher)
    first = spawn("--lease", "3")
    wait_ready(first)
    # seconds per seed; L1 distances, as a tiny model on random images may rank the classes
    # alike for every image (every Spearman score equal: no PIE stands out)
    slow = {**TINY, "seeds": [0, 1], "epochs": 25, "patience": 25, "measure": "l1"}
    run = start(client, researcher, ds, params=slow)["id"]
    wait_for(lambda: "seed 0:" in fetch(engine, run).log, 120, "seed 0 finished")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=30)
    checkpoint = work_dir(settings, run) / "population" / "seed-0" / "model.pt"
    trained_at = checkpoint.stat().st_mtime_ns
    assert fetch(engine, run).status == RunStatus.running  # nobody has noticed yet

    second = spawn("--lease", "3")
    wait_ready(second)
    wait_for(lambda: fetch(engine, run).status == RunStatus.succeeded, 180, "the run succeeded")
    done = fetch(engine, run)
    assert done.attempts == 2 and done.result_pie_set_id is not None
    assert "re-queued: its worker was silent" in done.log
    assert "seed 0: already trained and predicted, skipped" in done.log
    assert checkpoint.stat().st_mtime_ns == trained_at  # seed 0 was not trained again


@pytest.mark.slow
def test_cancel_stops_a_running_run_within_seconds_and_sigterm_hands_it_back(
    client: TestClient, users: Users, session: Session, tmp_path: Path, engine: Engine,
    spawn: Callable[..., WorkerProcess],
) -> None:  # fmt: skip
    ds = split_dataset(session, tmp_path)
    researcher = users.headers("rita", Role.researcher)
    long = {**TINY, "seeds": [0], "epochs": 1000, "patience": 1000}
    running = spawn()
    wait_ready(running)
    run = start(client, researcher, ds, params=long)["id"]
    wait_for(lambda: "train" in fetch(engine, run).stage, 60, "training started")
    assert client.post(f"/api/runs/{run}/cancel", headers=researcher).status_code == 200
    wait_for(lambda: fetch(engine, run).status == RunStatus.cancelled, 60, "cancelled")
    cancelled = fetch(engine, run)
    assert "cancel requested" in cancelled.log
    # stopped mid-training: its one seed (1,000 epochs) never finished
    assert "seed 0:" not in cancelled.log and cancelled.progress < 0.85

    # a stopped worker puts its run back in the queue at once, for the next worker
    other = start(client, researcher, ds, params=long)["id"]
    wait_for(lambda: "train" in fetch(engine, other).stage, 60, "training started")
    # seen alive, on its run, by the run pages (its heartbeat row)
    [seen] = client.get("/api/runs/workers", headers=researcher).json()
    assert seen["run_id"] == other and seen["pid"] == running.proc.pid
    assert client.get(f"/api/runs/{other}", headers=researcher).json()["hint"] is None
    running.proc.send_signal(signal.SIGTERM)
    assert running.proc.wait(timeout=30) == 0
    assert client.get("/api/runs/workers", headers=researcher).json() == []  # signed off
    assert (
        "No worker is running"
        in client.get(f"/api/runs/{other}", headers=researcher).json()["hint"]
    )
    back = fetch(engine, other)
    assert back.status == RunStatus.queued and back.worker_id is None
    assert "worker stopped: back in the queue" in back.log
