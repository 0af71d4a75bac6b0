"""PIE regeneration runs: API, worker (claims, heartbeats, leases, cancel, resume), results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from backend.auth.models import Role
from backend.config import Settings
from backend.datasets.models import Dataset
from backend.db import make_sessionmaker
from backend.piesets.models import PieSet
from backend.runs import repository
from backend.runs.models import MAX_ATTEMPTS, Run, RunStatus
from backend.runs.service import work_dir
from backend.runs.worker import Worker
from backend.timeutil import utcnow
from tests.conftest import Users
from tests.factories import make_pie_set, make_split_dataset

ROOT = Path(__file__).resolve().parents[2]
TINY = {"seeds": [0, 1], "image_size": 32, "epochs": 1, "batch_size": 16}


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


# ------------------------------------------------------------------ API


def test_start_validates_and_only_researchers_may(
    client: TestClient, users: Users, session: Session, tmp_path: Path
) -> None:
    ds = split_dataset(session, tmp_path)
    researcher = users.headers("rita", Role.researcher)
    coordinator = users.headers("cora", Role.coordinator)
    body = {"dataset_id": ds.id, "name": "regen", "params": TINY}
    assert client.post("/api/runs", json=body).status_code == 401
    assert client.post("/api/runs", json=body, headers=coordinator).status_code == 403
    assert client.get("/api/runs", headers=coordinator).status_code == 403

    bad = client.post(
        "/api/runs", json={**body, "params": {**TINY, "k_star": 0.33}}, headers=researcher
    )
    assert bad.status_code == 422 and "k_star" in bad.json()["error"]
    outside = client.post(
        "/api/runs",
        json={**body, "source": "store", "params": {"store_path": "/etc"}},
        headers=researcher,
    )
    assert outside.status_code == 422 and "outside the folders" in outside.json()["error"]
    missing = client.post("/api/runs", json={**body, "source": "store"}, headers=researcher)
    assert missing.status_code == 422 and "store_path" in missing.json()["error"]
    unknown = client.post("/api/runs", json={**body, "params": {"sedes": [1]}}, headers=researcher)
    assert unknown.status_code == 422 and "sedes" in unknown.text
    nodata = client.post("/api/runs", json={**body, "dataset_id": 999}, headers=researcher)
    assert nodata.status_code == 404

    run = start(client, researcher, ds)
    assert run["status"] == "queued" and run["progress"] == 0 and "queued by rita" in run["log"]
    assert [r["id"] for r in client.get("/api/runs", headers=researcher).json()] == [run["id"]]
    cancelled = client.post(f"/api/runs/{run['id']}/cancel", headers=researcher).json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    again = client.post(f"/api/runs/{run['id']}/cancel", headers=researcher)
    assert again.status_code == 409 and "already cancelled" in again.json()["error"]
    assert client.get("/api/runs/12345", headers=researcher).status_code == 404


def test_concurrent_claims_hand_out_each_run_once(
    client: TestClient, users: Users, session: Session, tmp_path: Path, engine: Engine
) -> None:
    ds = split_dataset(session, tmp_path)
    researcher = users.headers("rita", Role.researcher)
    ids = {start(client, researcher, ds)["id"] for _ in range(5)}
    sessions = make_sessionmaker(engine)
    claimed: list[int] = []
    barrier = threading.Barrier(10)

    def claimer(n: int) -> None:
        barrier.wait()
        for _ in range(3):
            with sessions.begin() as s:
                got = repository.claim_next(s, f"w{n}", utcnow())
            if got is not None:
                claimed.append(got)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)  # every run once, none twice
    with sessions() as s:
        runs = s.scalars(select(Run)).all()
        assert {r.status for r in runs} == {RunStatus.running}
        assert all(r.attempts == 1 and r.worker_id for r in runs)


def test_a_silent_worker_s_run_is_requeued_until_its_last_attempt_then_fails(
    client: TestClient, users: Users, session: Session, tmp_path: Path, engine: Engine,
    settings: Settings,
) -> None:  # fmt: skip
    ds = split_dataset(session, tmp_path)
    researcher = users.headers("rita", Role.researcher)
    last, earlier = start(client, researcher, ds)["id"], start(client, researcher, ds)["id"]
    long_ago = utcnow() - timedelta(hours=1)
    with make_sessionmaker(engine).begin() as s:  # both taken by workers that died an hour ago
        for run_id, attempts in ((last, MAX_ATTEMPTS), (earlier, 1)):
            s.execute(
                update(Run).where(Run.id == run_id).values(
                    status=RunStatus.running, worker_id="gone", attempts=attempts,
                    heartbeat_at=long_ago,
                )
            )  # fmt: skip
    w = worker(engine, settings)
    assert w.claim() == earlier  # re-queued, and claimed again at once
    again, given_up = fetch(engine, earlier), fetch(engine, last)
    assert (again.status, again.worker_id, again.attempts) == (RunStatus.running, w.id, 2)
    assert "re-queued: its worker was silent" in again.log
    assert given_up.status == RunStatus.failed and given_up.finished_at is not None
    assert given_up.worker_id is None and given_up.attempts == MAX_ATTEMPTS
    assert given_up.error is not None
    assert given_up.error.startswith(f"given up after {MAX_ATTEMPTS} attempts"), given_up.error
    assert "failed: its worker fell silent" in given_up.log


# ------------------------------------------------------------------ worker, in process


def test_a_run_makes_a_new_pie_set_version_and_studies_keep_theirs(
    client: TestClient, users: Users, session: Session, tmp_path: Path, engine: Engine,
    settings: Settings,
) -> None:  # fmt: skip
    ds = split_dataset(session, tmp_path)
    v1 = make_pie_set(session, session.get_one(Dataset, ds.id), n_pies=8, name="regen")
    v1_id = v1.id
    session.commit()
    coordinator = users.headers("cora")
    study = client.post(
        "/api/studies",
        json={"name": "S", "pie_set_id": v1_id, "cases_per_reader": 6, "planned_readers": 1},
        headers=coordinator,
    )
    assert study.status_code == 201, study.text
    researcher = users.headers("rita", Role.researcher)
    run = start(client, researcher, ds)

    assert worker(engine, settings).serve(drain=True) == 1
    done = client.get(f"/api/runs/{run['id']}", headers=researcher).json()
    assert done["status"] == "succeeded", done["error"]
    assert done["progress"] == 1.0 and done["finished_at"] and done["attempts"] == 1
    assert set(done["timings"]) >= {"decode", "seeds", "analysis", "report"}
    for line in ("claimed by worker", "seed 0:", "seed 1:", "PIEs of", "succeeded"):
        assert line in done["log"], line

    session.rollback()
    v2 = session.get(PieSet, done["result_pie_set_id"])
    assert v2 is not None and v2.name == "regen" and v2.version == 2
    assert v2.provenance["run_id"] == run["id"] and v2.provenance["run_source"] == "train"
    assert v2.provenance["report"].endswith(".html") and v2.parameters["seeds"] == [0, 1]
    assert v2.member_count == 20  # the test split
    v2_id = v2.id
    session.rollback()  # (SQLite: a reading session holds the write lock until it ends)
    page = client.get(f"/research/piesets/{v2_id}/report", headers=researcher)
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert (
        client.get(f"/api/studies/{study.json()['id']}", headers=coordinator).json()["pie_set_id"]
        == v1_id
    )

    # the finished run's store is a source of its own: a second run from it, no training
    store = work_dir(settings, run["id"]) / "store"
    again = start(
        client, researcher, ds, source="store", params={"store_path": str(store), "k_star": 0.8}
    )
    worker(engine, settings).serve(drain=True)
    second = client.get(f"/api/runs/{again['id']}", headers=researcher).json()
    assert second["status"] == "succeeded", second["error"]
    v3 = session.get(PieSet, second["result_pie_set_id"])
    assert v3 is not None and v3.version == 3 and v3.parameters["k_star"] == 0.8
    session.rollback()


def test_a_failing_run_is_failed_with_its_reason_and_makes_nothing(
    client: TestClient, users: Users, session: Session, tmp_path: Path, engine: Engine,
    settings: Settings,
) -> None:  # fmt: skip
    ds = split_dataset(session, tmp_path)
    researcher = users.headers("rita", Role.researcher)
    for image in Path(ds.image_root).glob("img_0000*.png"):
        image.unlink()  # the dataset's files went missing since it was imported
    run = start(client, researcher, ds)
    worker(engine, settings).serve(drain=True)
    failed = client.get(f"/api/runs/{run['id']}", headers=researcher).json()
    assert failed["status"] == "failed" and "not found" in failed["error"]
    session.rollback()
    assert session.scalars(select(PieSet)).all() == []
    session.rollback()


def test_a_run_whose_result_cannot_be_kept_fails_with_the_reason_and_the_worker_goes_on(
    client: TestClient, users: Users, session: Session, tmp_path: Path, engine: Engine,
    settings: Settings,
) -> None:  # fmt: skip
    ds = split_dataset(session, tmp_path)
    researcher = users.headers("rita", Role.researcher)
    # the analysis reports are kept in media/reports: a file in that folder's place
    reports = settings.resolved_media_dir / "reports"
    reports.parent.mkdir(parents=True, exist_ok=True)
    reports.write_text("taken")
    first = start(client, researcher, ds)["id"]
    assert worker(engine, settings).serve(drain=True) == 1
    store = work_dir(settings, first) / "store"
    more = [
        start(client, researcher, ds, source="store", params={"store_path": str(store)})["id"]
        for _ in range(2)
    ]
    assert worker(engine, settings).serve(drain=True) == 2  # it went on after the first failure
    for run_id in (first, *more):
        run = fetch(engine, run_id)
        assert run.status == RunStatus.failed and run.finished_at is not None
        assert run.error is not None and run.error.startswith("while finishing the run: "), (
            run.error
        )
        assert "FileExistsError" in run.error or "NotADirectoryError" in run.error, run.error
    assert session.scalars(select(PieSet)).all() == []
    session.rollback()


# ------------------------------------------------------------------ worker processes


class WorkerProcess:
    """A `piestudy worker` process whose output goes to a file (a pipe nobody reads would fill
    up and block the worker's prints)."""

    def __init__(self, proc: subprocess.Popen[str], output: Path):
        self.proc, self.output = proc, output

    def text(self) -> str:
        return self.output.read_text(errors="replace")


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
        cmd = [sys.executable, "-m", "backend.cli", "worker", "--heartbeat", "0.5", "--poll", "0.2"]
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


def test_two_worker_processes_never_run_the_same_run(
    client: TestClient, users: Users, session: Session, tmp_path: Path, engine: Engine,
    settings: Settings, spawn: Callable[..., WorkerProcess],
) -> None:  # fmt: skip
    ds = split_dataset(session, tmp_path)
    researcher = users.headers("rita", Role.researcher)
    # one trained store, then six analysis-only runs from it for two workers to compete for
    first = start(client, researcher, ds)
    worker(engine, settings).serve(drain=True)
    store = work_dir(settings, first["id"]) / "store"
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
    assert versions == list(range(1, 8))  # one PIE set per run, none twice


def test_a_killed_worker_s_run_is_requeued_and_resumed_without_retraining(
    client: TestClient, users: Users, session: Session, tmp_path: Path, engine: Engine,
    settings: Settings, spawn: Callable[..., WorkerProcess],
) -> None:  # fmt: skip
    ds = split_dataset(session, tmp_path)
    researcher = users.headers("rita", Role.researcher)
    first = spawn("--lease", "3")
    wait_ready(first)
    slow = {**TINY, "seeds": [0, 1, 2], "epochs": 25, "patience": 25}  # seconds per seed
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
    asked = time.monotonic()
    assert client.post(f"/api/runs/{run}/cancel", headers=researcher).status_code == 200
    wait_for(lambda: fetch(engine, run).status == RunStatus.cancelled, 10, "cancelled")
    assert time.monotonic() - asked < 5
    assert "cancel requested" in fetch(engine, run).log

    # a stopped worker puts its run back in the queue at once, for the next worker
    other = start(client, researcher, ds, params=long)["id"]
    wait_for(lambda: "train" in fetch(engine, other).stage, 60, "training started")
    running.proc.send_signal(signal.SIGTERM)
    assert running.proc.wait(timeout=30) == 0
    back = fetch(engine, other)
    assert back.status == RunStatus.queued and back.worker_id is None
    assert "worker stopped: back in the queue" in back.log
