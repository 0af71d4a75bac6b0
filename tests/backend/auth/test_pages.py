"""The sign-in pages and the front door: where each kind of visitor lands, the one cookie, and
pages that answer bad addresses with an error page, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import SimpleCookie

from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.auth.models import Role
from tests.backend.conftest import StudySetup
from tests.backend.studies.test_pages import signed_in
from tests.conftest import Users
from tests.factories import PASSWORD


def test_the_front_door_sends_each_visitor_home(
    app: FastAPI, users: Users, make_study: Callable[..., StudySetup]
) -> None:
    study = make_study(readers=1)
    visitors = {
        "/login": TestClient(app),
        "/studies": signed_in(app, users, "cora", Role.coordinator),
        "/research": signed_in(app, users, "rita", Role.researcher),
        "/read": study.reader_client(app, 0),
    }
    for home, client in visitors.items():
        r = client.get("/", follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, home)
    assert TestClient(app).get("/").url.path == "/login"  # and the sign-in page is there


def _samesite(set_cookie: str) -> str:
    cookie = SimpleCookie()
    cookie.load(set_cookie)
    return str(next(iter(cookie.values()))["samesite"]).lower()


def test_the_api_and_the_page_set_the_same_session_cookie(app: FastAPI, users: Users) -> None:
    users.create("cora", Role.coordinator)
    login = {"username": "cora", "password": PASSWORD}
    api = TestClient(app).post("/api/auth/login", json=login)
    page = TestClient(app).post("/login", data=login, follow_redirects=False)
    assert api.status_code == 200 and page.status_code == 303
    assert _samesite(api.headers["set-cookie"]) == _samesite(page.headers["set-cookie"]) == "lax"
    for r in (api, page):
        assert "httponly" in r.headers["set-cookie"].lower()


def test_pages_answer_bad_addresses_with_an_error_page(
    app: FastAPI, users: Users, make_study: Callable[..., StudySetup]
) -> None:
    study = make_study(readers=1)
    owner = TestClient(app)
    owner.post("/login", data={"username": "coordinator", "password": PASSWORD})
    reader = study.reader_client(app, 0)
    bad = [
        (owner, f"/studies/{study.study_id}?refresh_ms=abc", 422),
        (owner, f"/studies/{study.study_id}?refresh_ms=10", 422),
        (owner, "/studies/99999999999", 422),
        (owner, "/studies/0", 422),
        (reader, "/read/cases/abc", 422),
        (reader, "/read/cases/0", 422),
        (reader, "/read/cases/100001", 422),
        (TestClient(app), "/r/" + "x" * 300, 422),
        (TestClient(app), "/no/such/page", 404),
    ]
    for client, path, status in bad:
        r = client.get(path, follow_redirects=False)
        assert r.status_code == status, (path, r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("text/html"), path
        assert "<h1>" in r.text, path
    ok = owner.get(f"/studies/{study.study_id}?refresh_ms=500")
    assert ok.status_code == 200 and 'data-refresh-ms="500"' in ok.text
    # the API still answers in JSON
    assert TestClient(app).get("/api/no/such").headers["content-type"] == "application/json"
