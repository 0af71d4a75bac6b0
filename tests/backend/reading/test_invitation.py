from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.backend.conftest import StudySetup

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database


def test_invitation_link_sets_session_and_redirects(
    app: FastAPI, make_study: Callable[..., StudySetup]
) -> None:
    s = make_study()
    c = TestClient(app)
    r = c.get(f"/r/{s.invitations[0]['token']}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/read"
    assert "piestudy_reader" in r.cookies
    assert r.cookies["piestudy_reader"] != s.invitations[0]["token"]  # a separate session token
    page = c.get("/read")
    assert (
        page.status_code == 200
        and "Welcome, Dr A" in page.text
        and "<strong>40</strong>" in page.text
    )
    me = c.get("/api/reader/me").json()
    assert me["display_name"] == "Dr A" and me["progress"] == {"answered": 0, "total": 40}
    assert me["next_position"] == 1 and me["accepting_answers"] is True
    assert [q["key"] for q in me["questions"]] == ["agree", "quality", "difficulty"]


def test_an_unknown_link_is_not_valid_and_a_withdrawn_one_says_so(
    app: FastAPI, client: TestClient, make_study: Callable[..., StudySetup]
) -> None:
    s = make_study()
    open_before = s.reader_client(app, 1)  # a reading screen open when the link is withdrawn
    c = TestClient(app)
    unknown = c.get("/r/not-a-real-token-at-all")
    rid = s.invitations[1]["reader"]["id"]
    client.post(f"/api/studies/{s.study_id}/readers/{rid}/revoke", headers=s.coordinator)
    revoked = c.get(f"/r/{s.invitations[1]['token']}")
    assert unknown.status_code == revoked.status_code == 404
    assert "This link is not valid" in unknown.text and "withdrawn" not in unknown.text
    assert "This link was withdrawn" in revoked.text and "ask them" in revoked.text
    assert "piestudy_reader" not in unknown.cookies and "piestudy_reader" not in revoked.cookies
    assert c.get("/api/reader/me").status_code == 401
    assert c.get("/read").status_code == 401
    a = c.post("/api/reader/session", json={"invitation_token": "not-a-real-token-at-all"})
    b = c.post("/api/reader/session", json={"invitation_token": s.invitations[1]["token"]})
    assert a.status_code == b.status_code == 404
    assert "not valid" in a.json()["error"] and b.json()["detail"] == {"reason": "withdrawn"}
    # the open screen learns why it can no longer save
    page = open_before.get("/read")
    assert page.status_code == 401 and "This link was withdrawn" in page.text
    save = open_before.post(
        "/api/reader/cases/1/answer", json={"answer_id": "after-revoke", "agree": True}
    )
    assert save.status_code == 401 and save.json()["detail"] == {"reason": "withdrawn"}


def test_json_session_exchange(app: FastAPI, make_study: Callable[..., StudySetup]) -> None:
    s = make_study()
    c = TestClient(app)
    r = c.post("/api/reader/session", json={"invitation_token": s.invitations[0]["token"]})
    assert r.status_code == 200 and r.json()["display_name"] == "Dr A"
    assert c.get("/api/reader/cases").json()["progress"]["total"] == 40
    assert c.delete("/api/reader/session").status_code == 204
    assert c.get("/api/reader/me").status_code == 401


def test_reader_sees_only_their_own_cases(
    app: FastAPI, client: TestClient, make_study: Callable[..., StudySetup]
) -> None:
    s = make_study(cases_per_reader=10)
    a, b = s.reader_client(app, 0), s.reader_client(app, 1)
    assert a.get("/api/reader/cases/11").status_code == 404
    assert a.get("/api/reader/cases/0").status_code == 422
    labels_a = [a.get(f"/api/reader/cases/{p}").json()["labels"] for p in range(1, 11)]
    images_a = [a.get(f"/api/reader/cases/{p}/image").content for p in range(1, 11)]
    images_b = [b.get(f"/api/reader/cases/{p}/image").content for p in range(1, 11)]
    assert len(labels_a) == 10
    assert not set(images_a) & set(images_b), "two readers were shown the same image"
    # each reader's list, seen by the coordinator, matches what the reader is shown
    rid = s.invitations[0]["reader"]["id"]
    rows = client.get(
        f"/api/studies/{s.study_id}/readers/{rid}/assignments", headers=s.coordinator
    ).json()
    assert [r["position"] for r in rows] == list(range(1, 11))


def test_resume_on_another_device(app: FastAPI, make_study: Callable[..., StudySetup]) -> None:
    s = make_study(cases_per_reader=4)
    laptop = s.reader_client(app, 0)
    for p in (1, 2):
        laptop.post(
            f"/api/reader/cases/{p}/answer",
            json={"answer_id": f"laptop-{p}", "agree": True, "quality": 3, "difficulty": 2},
        )
    tablet = s.reader_client(app, 0)
    me = tablet.get("/api/reader/me").json()
    assert me["progress"] == {"answered": 2, "total": 4} and me["next_position"] == 3
    assert tablet.get("/api/reader/cases/1").json()["answer"]["quality"] == 3
    # both sessions stay valid
    assert laptop.get("/api/reader/me").status_code == 200
