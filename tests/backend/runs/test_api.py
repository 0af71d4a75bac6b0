"""Runs through the API: validation, who may, claims that never hand a run out twice, leases."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from backend.auth.models import Role
from backend.config import Settings
from backend.db import make_sessionmaker
from backend.runs import repository
from backend.runs.models import MAX_ATTEMPTS, Run, RunStatus
from backend.timeutil import utcnow
from tests.backend.runs.helpers import (
    TINY,
    fetch,
    split_dataset,
    start,
    worker,
)
from tests.conftest import Users

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database


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


def test_a_queued_run_says_its_place_and_whether_any_worker_would_take_it(
    client: TestClient, users: Users, session: Session, tmp_path: Path, engine: Engine,
    settings: Settings,
) -> None:  # fmt: skip
    ds = split_dataset(session, tmp_path)
    researcher = users.headers("rita", Role.researcher)
    first, second = start(client, researcher, ds), start(client, researcher, ds)
    assert (first["queue_position"], second["queue_position"]) == (1, 2)
    assert first["workers_alive"] == 0 and "No worker is running" in first["hint"]
    assert "uv run piestudy worker" in first["hint"]
    page = client.get(f"/research/runs/{second['id']}", headers=researcher).text
    assert "2nd in the queue · 0 workers alive" in page and "No worker is running" in page
    assert client.get("/api/runs/workers", headers=researcher).json() == []
    assert client.get("/api/runs/workers", headers=users.headers("cora")).status_code == 403

    idle = worker(engine, settings, heartbeat_s=0.5)
    idle.idle_beat()  # what serve() does between looks at the queue
    [seen] = client.get("/api/runs/workers", headers=researcher).json()
    assert seen["id"] == idle.id and seen["run_id"] is None and seen["executor"] == "local"
    shown = client.get(f"/api/runs/{second['id']}", headers=researcher).json()
    assert shown["workers_alive"] == 1 and shown["hint"] is None  # an idle worker takes it

    with make_sessionmaker(engine).begin() as s:  # busy with the first run
        idle.register(s, first["id"])
    shown = client.get(f"/api/runs/{second['id']}", headers=researcher).json()
    assert shown["hint"].startswith(
        f"2nd in the queue: every worker alive is busy (run {first['id']})"
    )
    listed = {r["id"]: r for r in client.get("/api/runs", headers=researcher).json()}
    assert listed[second["id"]]["queue_position"] == 2 and listed[first["id"]]["workers_alive"] == 1

    with make_sessionmaker(engine).begin() as s:  # silent for longer than three heartbeats
        repository.beat(
            s, idle.id, utcnow() - timedelta(seconds=30), host="h", pid=1, executor="local",
            heartbeat_s=0.5, run_id=None,
        )  # fmt: skip
    assert client.get("/api/runs/workers", headers=researcher).json() == []
    assert (
        "No worker is running"
        in client.get(f"/api/runs/{second['id']}", headers=researcher).json()["hint"]
    )

    idle.idle_beat()
    idle.unregister()  # a worker that stops signs off at once
    assert client.get("/api/runs/workers", headers=researcher).json() == []
    client.post(f"/api/runs/{first['id']}/cancel", headers=researcher)
    shown = client.get(f"/api/runs/{second['id']}", headers=researcher).json()
    assert shown["queue_position"] == 1  # the cancelled one left the queue


def test_a_worker_is_seen_while_it_serves_and_signs_off_when_it_stops(
    client: TestClient, users: Users, session: Session, tmp_path: Path, engine: Engine,
    settings: Settings,
) -> None:  # fmt: skip
    researcher = users.headers("rita", Role.researcher)
    w = worker(engine, settings, heartbeat_s=0.5, poll_s=0.05)
    thread = threading.Thread(target=w.serve, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            seen = client.get("/api/runs/workers", headers=researcher).json()
            if seen:
                break
            threading.Event().wait(0.05)
        assert [x["id"] for x in seen] == [w.id]
    finally:
        w.stopping.set()
        thread.join(10)
    assert client.get("/api/runs/workers", headers=researcher).json() == []
