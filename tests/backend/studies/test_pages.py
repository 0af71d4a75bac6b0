from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.auth.models import Role
from tests.backend.conftest import StudySetup
from tests.conftest import Users
from tests.factories import PASSWORD


def signed_in(app: FastAPI, users: Users, name: str, role: Role) -> TestClient:
    users.create(name, role)
    c = TestClient(app)
    r = c.post("/login", data={"username": name, "password": PASSWORD}, follow_redirects=False)
    home = "/research" if role == Role.researcher else "/studies"
    assert r.status_code == 303 and r.headers["location"] == home
    return c


def test_pages_need_a_coordinator(
    app: FastAPI, users: Users, make_study: Callable[..., StudySetup]
) -> None:
    s = make_study()
    anonymous = TestClient(app)
    for path in ("/studies", f"/studies/{s.study_id}"):
        r = anonymous.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login"
    reader = s.reader_client(app, 0)  # a reader's cookie opens nothing here
    assert reader.get("/studies", follow_redirects=False).status_code == 303
    researcher = signed_in(app, users, "rita", Role.researcher)
    assert researcher.get("/studies", follow_redirects=False).status_code == 303
    other = signed_in(app, users, "other", Role.coordinator)
    assert other.get(f"/studies/{s.study_id}").status_code == 404
    assert "Reading study" not in other.get("/studies").text


def test_owner_sees_the_study_page(app: FastAPI, make_study: Callable[..., StudySetup]) -> None:
    s = make_study(readers=2)
    c = TestClient(app)
    r = c.post(
        "/login", data={"username": "coordinator", "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 303
    page = c.get(f"/studies/{s.study_id}")
    assert page.status_code == 200 and "Dr A" in page.text and "Kruskal-Wallis" in page.text
    assert "needs at least 2 answers" in page.text  # no answers yet: says why, does not fail
    assert "Reading study" in c.get("/studies").text
    bad = c.post("/login", data={"username": "coordinator", "password": "nope-nope"})
    assert bad.status_code == 401 and "wrong username or password" in bad.text
    assert c.post("/logout", follow_redirects=False).headers["location"] == "/login"
