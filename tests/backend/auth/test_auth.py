from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from backend.auth import repository
from backend.auth.models import Role
from backend.cli import app as cli
from backend.config import Settings
from tests.conftest import Users
from tests.factories import PASSWORD

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database


def test_login_and_me(client: TestClient, users: Users) -> None:
    users.create("carol", Role.coordinator)
    r = client.post("/api/auth/login", json={"username": "carol", "password": PASSWORD})
    assert r.status_code == 200
    token = r.json()["token"]
    assert "piestudy_session" in r.cookies
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "carol"
    assert me.json()["role"] == "coordinator"
    # the cookie alone authenticates too (the web interface uses it)
    assert client.get("/api/auth/me").status_code == 200


def test_wrong_password_and_unknown_user_look_the_same(client: TestClient, users: Users) -> None:
    users.create("carol", Role.coordinator)
    a = client.post("/api/auth/login", json={"username": "carol", "password": "nope-nope-nope"})
    b = client.post("/api/auth/login", json={"username": "nobody", "password": "nope-nope-nope"})
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()


def test_logout_revokes_the_token(client: TestClient, users: Users) -> None:
    h = users.headers("carol")
    assert client.post("/api/auth/logout", headers=h).status_code == 204
    client.cookies.clear()
    assert client.get("/api/auth/me", headers=h).status_code == 401


def test_passwords_are_argon2_hashes(session: Session, users: Users) -> None:
    users.create("carol", Role.coordinator)
    stored = repository.get_user_by_username(session, "carol")
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every JSON API route, from the route table itself."""
    # This FastAPI nests included routers, so the flattened view is the OpenAPI schema.
    paths = app.openapi()["paths"]
    return [(m.upper(), p) for p, ops in paths.items() if p.startswith("/api/") for m in ops]


def _fill(path: str) -> str:
    return "/".join("1" if p.startswith("{") else p for p in path.split("/"))


def test_every_endpoint_but_health_and_login_needs_authentication(
    app: FastAPI, client: TestClient
) -> None:
    # health, login, and the reader's invitation exchange are the only open routes
    open_routes = {
        ("GET", "/api/health"),
        ("POST", "/api/auth/login"),
        ("POST", "/api/reader/session"),
    }
    routes = [r for r in api_routes(app) if r not in open_routes]
    assert len(routes) >= 15
    for method, path in routes:
        r = client.request(method, _fill(path))
        assert r.status_code == 401, f"{method} {path} answered {r.status_code} without credentials"


def test_roles(client: TestClient, users: Users) -> None:
    researcher = users.headers("rita", Role.researcher)
    coordinator = users.headers("cole", Role.coordinator)
    admin = users.headers("ada", Role.admin)
    assert client.get("/api/studies", headers=researcher).status_code == 403
    assert client.get("/api/studies", headers=coordinator).status_code == 200
    assert client.get("/api/datasets", headers=coordinator).status_code == 200
    assert client.get("/api/users", headers=coordinator).status_code == 403
    assert client.get("/api/users", headers=admin).status_code == 200
    body = {"username": "newbie", "password": "long-enough-pw", "role": "researcher"}
    assert client.post("/api/users", json=body, headers=coordinator).status_code == 403
    assert client.post("/api/users", json=body, headers=admin).status_code == 201
    assert client.post("/api/users", json=body, headers=admin).status_code == 409
    # imports are the researchers' (and admins'); coordinators only read
    r = client.post(
        "/api/datasets/import",
        json={"name": "x", "format": "plain", "labels_files": ["a.csv"], "image_dir": "."},
        headers=coordinator,
    )
    assert r.status_code == 403


def test_cli_user_create(env_settings: Settings, monkeypatch, client: TestClient) -> None:
    monkeypatch.setenv("NEW_PW", "cli-password-123")
    result = CliRunner().invoke(
        cli, ["user", "create", "dora", "--role", "researcher", "--password-env", "NEW_PW"]
    )
    assert result.exit_code == 0, result.output
    assert "created researcher 'dora'" in result.output
    r = client.post("/api/auth/login", json={"username": "dora", "password": "cli-password-123"})
    assert r.status_code == 200
    again = CliRunner().invoke(cli, ["user", "create", "dora", "--password-env", "NEW_PW"])
    assert again.exit_code == 2
    short = CliRunner().invoke(
        cli, ["user", "create", "eve", "--password-env", "SHORT"], env={"SHORT": "abc"}
    )
    assert short.exit_code == 2
