from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.auth.models import Role
from tests.backend.conftest import StudySetup
from tests.conftest import Users
from tests.factories import PASSWORD, make_dataset, make_pie_set


def sign_in(app: FastAPI, users: Users, name: str, role: Role) -> TestClient:
    users.create(name, role)
    c = TestClient(app)
    r = c.post("/login", data={"username": name, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    return c


def test_researcher_pages(app: FastAPI, users: Users, session: Session, tmp_path: Path) -> None:
    ds = make_dataset(session, tmp_path, 60)
    ps = make_pie_set(session, ds, n_pies=6, name="k90")
    session.commit()
    c = sign_in(app, users, "rita", Role.researcher)
    assert (
        c.post(
            "/login", data={"username": "rita", "password": PASSWORD}, follow_redirects=False
        ).headers["location"]
        == "/research"
    )
    index = c.get("/research").text
    assert "k90" in index and "ds" in index and "v1" in index
    page = c.get(f"/research/piesets/{ps.id}").text
    assert page.count('class="bar-pie"') >= 1 and page.count("<li><img") == 6
    thumb_url = page.split('<li><img src="')[1].split('"')[0]
    r = c.get(thumb_url)
    assert (
        r.status_code == 200
        and r.headers["content-type"] == "image/png"
        and r.content[:4] == b"\x89PNG"
    )
    assert c.get(f"/research/piesets/{ps.id + 99}").status_code == 404
    # the thumbnail route is for researchers only
    assert TestClient(app).get(thumb_url).status_code == 401
    coordinator = sign_in(app, users, "cole", Role.coordinator)
    assert coordinator.get(thumb_url).status_code == 401
    assert coordinator.get("/research", follow_redirects=False).status_code == 303


def test_readers_cannot_reach_research(app: FastAPI, make_study: Callable[..., StudySetup]) -> None:
    reader = make_study().reader_client(app, 0)
    assert reader.get("/research", follow_redirects=False).status_code == 303
    assert reader.get("/research/images/1/thumbnail").status_code == 401
