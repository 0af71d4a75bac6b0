"""Edge security: headers, cross-site request refusal, login rate limiting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.auth.models import Role, SignInFailure
from backend.config import Settings
from backend.main import create_app
from backend.timeutil import utcnow
from tests.backend.conftest import StudySetup
from tests.conftest import Users
from tests.factories import PASSWORD

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database

EVIL = {"origin": "https://evil.example.com"}


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    for path in ("/api/health", "/login", "/static/css/app.css", "/api/nothing-here"):
        h = client.get(path).headers
        assert h["x-content-type-options"] == "nosniff", path
        assert h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "same-origin"  # invitation tokens never leak to other sites
        csp = h["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "strict-transport-security" not in h  # only in production
        timing = h["server-timing"]  # the server's own time, read by benchmarks/load.py
        assert timing.startswith("app;dur=") and float(timing.removeprefix("app;dur=")) >= 0


def test_cross_site_state_changes_are_refused(
    app: FastAPI, client: TestClient, users: Users, make_study: Callable[..., StudySetup]
) -> None:
    users.create("ada", Role.coordinator)
    body = {"username": "ada", "password": PASSWORD}
    refused = client.post("/api/auth/login", json=body, headers=EVIL)
    assert refused.status_code == 403 and "cross-site" in refused.json()["error"]
    assert "set-cookie" not in refused.headers
    form = client.post("/login", data=body, headers={"referer": "https://evil.example.com/x"})
    assert form.status_code == 403
    own = client.post("/api/auth/login", json=body, headers={"origin": "http://testserver"})
    assert own.status_code == 200
    assert client.post("/api/auth/login", json=body).status_code == 200  # not a browser

    reader = make_study().reader_client(app, 0)
    answer = {"answer_id": "answer-0001", "agree": True, "active_seconds": 1.0}
    hit = reader.post("/api/reader/cases/1/answer", json=answer, headers=EVIL)
    assert hit.status_code == 403
    assert reader.get("/api/reader/me").json()["progress"]["answered"] == 0
    assert reader.get("/api/reader/me", headers=EVIL).status_code == 200  # reads are harmless
    ok = reader.post(
        "/api/reader/cases/1/answer", json=answer, headers={"origin": "http://testserver"}
    )
    assert ok.status_code == 200


def test_login_is_rate_limited_per_username(client: TestClient, users: Users) -> None:
    users.create("ada", Role.coordinator)
    for _ in range(5):
        bad = client.post("/api/auth/login", json={"username": "ada", "password": "wrong-password"})
        assert bad.status_code == 401
    blocked = client.post("/api/auth/login", json={"username": "ADA", "password": PASSWORD})
    assert blocked.status_code == 429  # even the right password, until the window passes
    assert int(blocked.headers["retry-after"]) > 800 and "too many" in blocked.json()["error"]
    page = client.post("/login", data={"username": "ada", "password": PASSWORD})
    assert page.status_code == 429 and "too many failed sign-ins" in page.text
    users.create("bob", Role.coordinator)
    other = client.post("/api/auth/login", json={"username": "bob", "password": PASSWORD})
    assert other.status_code == 200  # another account is unaffected


def test_a_success_clears_the_failures(client: TestClient, users: Users) -> None:
    users.create("ada", Role.coordinator)
    for _ in range(4):
        client.post("/api/auth/login", json={"username": "ada", "password": "wrong-password"})
    assert (
        client.post("/api/auth/login", json={"username": "ada", "password": PASSWORD}).status_code
        == 200
    )
    for _ in range(4):
        client.post("/api/auth/login", json={"username": "ada", "password": "wrong-password"})
    assert (
        client.post("/api/auth/login", json={"username": "ada", "password": PASSWORD}).status_code
        == 200
    )


def test_every_server_process_counts_the_same_failures(
    settings: Settings, users: Users, session: Session
) -> None:
    """Two apps on one database stand for two worker processes (or a server before and after a
    restart): the failures counted by one hold in the other."""
    users.create("ada", Role.coordinator)
    wrong = {"username": "ada", "password": "wrong-password"}
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        for c in (one, two, one, two, one):
            assert c.post("/api/auth/login", json=wrong).status_code == 401
        right = {"username": "ada", "password": PASSWORD}
        assert two.post("/api/auth/login", json=right).status_code == 429
        assert one.post("/api/auth/login", json=right).status_code == 429
    # per address too: 30 failures from one address over many usernames, in either process
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        for i in range(30 - 5):  # ada's 5 count for the address too (refusals do not)
            c = (one, two)[i % 2]
            r = c.post("/api/auth/login", json={"username": f"nobody{i}", "password": "x-wrong"})
            assert r.status_code == 401
        users.create("bob", Role.coordinator)
        bob = {"username": "bob", "password": PASSWORD}
        assert two.post("/api/auth/login", json=bob).status_code == 429
    # failures older than the window no longer count, and are deleted at the next failure
    session.execute(update(SignInFailure).values(at=utcnow() - timedelta(hours=1)))
    session.commit()
    with TestClient(create_app(settings)) as one:
        assert one.post("/api/auth/login", json=wrong).status_code == 401
        assert one.post("/api/auth/login", json=right).status_code == 200
    # what is left: the address's one recent failure (the success cleared the username's)
    assert session.scalars(select(SignInFailure.key)).all() == ["a:testclient"]
    session.rollback()
