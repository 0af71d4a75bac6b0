from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import text

from backend.config import DEFAULT_SECRET_KEY, Settings
from backend.db import make_engine, request_slots
from backend.main import create_app


def test_health_answers_200_when_database_is_up(client: TestClient) -> None:
    r = client.get("/api/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok"}


def test_health_answers_503_when_database_is_down(tmp_path: Path) -> None:
    settings = Settings(
        env="test",
        var_dir=tmp_path,
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1",
    )
    with TestClient(create_app(settings)) as c:
        r = c.get("/api/health")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable"


def test_default_secret_refused_in_production(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="PIESTUDY_SECRET_KEY"):
        Settings(env="production", var_dir=tmp_path)
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(env="production", var_dir=tmp_path, secret_key="short")
    ok = Settings(env="production", var_dir=tmp_path, secret_key="x" * 40)
    assert ok.secret_key.get_secret_value() != DEFAULT_SECRET_KEY


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIESTUDY_VAR_DIR", str(tmp_path / "v"))
    monkeypatch.setenv("PIESTUDY_PORT", "8123")
    s = Settings()
    assert s.port == 8123
    assert s.resolved_database_url == f"sqlite:///{(tmp_path / 'v' / 'piestudy.db').resolve()}"
    assert s.resolved_media_dir == (tmp_path / "v" / "media").resolve()
    assert s.base_url == "http://127.0.0.1:8123"


def test_default_sqlite_has_wal_and_foreign_keys(tmp_path: Path) -> None:
    url = Settings(var_dir=tmp_path / "var").resolved_database_url
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()
    assert (tmp_path / "var" / "piestudy.db").exists()


def test_validation_errors_name_the_field(client: TestClient) -> None:
    r = client.post("/api/auth/login", json={"username": "x"})
    assert r.status_code == 422
    assert r.json()["error"].startswith("invalid password")


def test_allowed_hosts_refuse_other_host_headers(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"allowed_hosts": ["piestudy.example.org"]}))
    with TestClient(app, base_url="http://piestudy.example.org") as ok:
        assert ok.get("/api/health").status_code == 200
    with TestClient(app, base_url="http://evil.example.com") as other:
        assert other.get("/api/health").status_code == 400


def test_server_processes_one_per_core(tmp_path: Path) -> None:
    sqlite = Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}", var_dir=tmp_path)
    pg = Settings(database_url="postgresql+psycopg://db.example/piestudy", var_dir=tmp_path)
    assert sqlite.server_workers == pg.server_workers == max(1, min(os.cpu_count() or 1, 8))
    assert Settings(database_url=pg.database_url, var_dir=tmp_path, workers=3).server_workers == 3


def test_database_slots_are_shared_out_among_server_processes(tmp_path: Path) -> None:
    sqlite = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    pg = make_engine("postgresql+psycopg://db.example/piestudy")  # never connected
    assert [request_slots(sqlite, None, n) for n in (1, 2)] == [1, 1]
    assert [request_slots(pg, None, n) for n in (1, 2, 3, 8)] == [4, 2, 2, 2]
    assert request_slots(pg, 6, 2) == 6 and request_slots(sqlite, 3) == 3  # configured
    assert request_slots(pg, 10) == 10 and request_slots(pg, 50) == 10  # never above the pool
    sqlite.dispose()
    pg.dispose()


def test_the_default_settings_serve_their_sqlite_file(tmp_path: Path) -> None:
    """No database URL set: the SQLite file under var/, served by one process per core."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIESTUDY_")}
    defaults = Settings(_env_file=None, var_dir=tmp_path)
    assert defaults.database_url == "" and defaults.resolved_database_url.startswith("sqlite")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    env.update({"PIESTUDY_VAR_DIR": str(tmp_path / "var"), "PYTHONPATH": str(root)})
    server = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health") as r:
                    assert r.status == 200
                    break
            except OSError:
                assert server.poll() is None, "the server exited"
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.2)
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        workers = defaults.server_workers
        # one child per process where there are several (and multiprocessing's resource tracker)
        assert len(children) >= workers if workers > 1 else children == [], children
        assert (tmp_path / "var" / "piestudy.db").is_file()
    finally:
        server.terminate()
        server.wait(timeout=30)
