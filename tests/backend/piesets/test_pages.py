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


def test_analysis_report_attached_to_a_pie_set(
    app: FastAPI, users: Users, session: Session, tmp_path: Path
) -> None:
    from tests.factories import pieset_csv
    from tests.htmlcheck import escaped_twice

    ds = make_dataset(session, tmp_path, 40)
    session.commit()
    c = sign_in(app, users, "rita", Role.researcher)
    r = c.post("/api/auth/login", json={"username": "rita", "password": PASSWORD})
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    ids = [f"img_{i:05d}.png" for i in range(40)]
    report = b"<!doctype html><html><body><h1>Pruning analysis</h1></body></html>"
    files = {
        "file": ("pies.csv", pieset_csv(ids, set(ids[:4])), "text/csv"),
        "report": ("report.html", report, "text/html"),
    }
    created = c.post(
        "/api/piesets/import",
        data={"dataset_id": str(ds.id), "name": "with-report"},
        files=files,
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["provenance"]["report"].endswith(".html")
    page = c.get(f"/research/piesets/{created.json()['id']}").text
    assert 'id="report-link"' in page
    pie_set_id = created.json()["id"]
    served = c.get(f"/research/piesets/{pie_set_id}/report")
    assert served.status_code == 200 and b"Pruning analysis" in served.content
    # in the app: a way back to the PIE set and a print button, after the report's <body>
    assert served.text.index("<body>") < served.text.index(f'href="/research/piesets/{pie_set_id}"')
    assert 'id="print"' in served.text and "Back to with-report v1" in served.text
    assert escaped_twice(served.text) == [] and escaped_twice(page) == []
    kept = c.get(f"/research/piesets/{pie_set_id}/report?download=1")
    assert kept.content == report  # the file as it was made
    assert "attachment" in kept.headers["content-disposition"]
    assert (
        TestClient(app)
        .get(f"/research/piesets/{created.json()['id']}/report", follow_redirects=False)
        .status_code
        == 303
    )
    bad = {
        "file": ("pies.csv", pieset_csv(ids, set(ids[:4])), "text/csv"),
        "report": ("report.html", b"MZ\x90\x00", "text/html"),
    }
    r = c.post(
        "/api/piesets/import",
        data={"dataset_id": str(ds.id), "name": "bad"},
        files=bad,
        headers=headers,
    )
    assert r.status_code == 422 and "not an HTML report" in r.json()["error"]
    plain = c.post("/api/piesets/import", data={"dataset_id": str(ds.id), "name": "plain"},
                   files={"file": ("pies.csv", pieset_csv(ids, set(ids[:4])), "text/csv")}, headers=headers)  # fmt: skip
    assert "No analysis report attached" in c.get(f"/research/piesets/{plain.json()['id']}").text
    assert c.get(f"/research/piesets/{plain.json()['id']}/report").status_code == 404
