from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.reading.models import Answer, AnswerRevision
from tests.backend.conftest import StudySetup

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database


def post(c: TestClient, position: int, **body: object):
    return c.post(f"/api/reader/cases/{position}/answer", json=body)


def revisions(session: Session) -> int:
    n = session.scalar(select(func.count()).select_from(AnswerRevision)) or 0
    session.rollback()
    return n


def test_partial_then_complete(app: FastAPI, make_study: Callable[..., StudySetup]) -> None:
    c = make_study().reader_client(app, 0)
    r = post(c, 1, answer_id="a-000001", agree=False, active_seconds=3.5)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"]["agree"] is False and body["answer"]["complete"] is False
    assert body["progress"]["answered"] == 0 and body["next_position"] == 1
    body = post(c, 1, answer_id="a-000002", quality=4, difficulty=2, active_seconds=9.25).json()
    assert body["answer"] == body["answer"] | {
        "agree": False,
        "quality": 4,
        "difficulty": 2,
        "complete": True,
    }
    assert body["answer"]["active_seconds"] == 9.25
    assert body["progress"]["answered"] == 1 and body["next_position"] == 2
    listed = c.get("/api/reader/cases").json()["cases"]
    assert listed[0] == {
        "position": 1,
        "complete": True,
        "started": True,
        "flagged": False,
        "practice": False,
    }
    assert listed[1] == {
        "position": 2,
        "complete": False,
        "started": False,
        "flagged": False,
        "practice": False,
    }


def test_retry_is_idempotent(
    app: FastAPI, make_study: Callable[..., StudySetup], session: Session
) -> None:
    c = make_study().reader_client(app, 0)
    body = {
        "answer_id": "retry-0001",
        "agree": True,
        "quality": 5,
        "difficulty": 1,
        "active_seconds": 4.0,
    }
    first = post(c, 2, **body)
    again = post(c, 2, **body)
    assert first.status_code == again.status_code == 200
    assert first.json()["replayed"] is False and again.json()["replayed"] is True
    assert first.json()["answer"] == again.json()["answer"]
    assert revisions(session) == 1
    clash = post(c, 2, **(body | {"quality": 1}))
    assert clash.status_code == 409 and "answer_id" in clash.json()["error"]
    elsewhere = post(c, 3, **body)
    assert elsewhere.status_code == 409
    assert revisions(session) == 1


def test_changes_keep_every_revision(
    app: FastAPI, make_study: Callable[..., StudySetup], session: Session
) -> None:
    c = make_study().reader_client(app, 0)
    post(c, 1, answer_id="c-000001", agree=True, quality=2, difficulty=3)
    r = post(c, 1, answer_id="c-000002", quality=4)
    assert r.json()["answer"]["quality"] == 4
    rows = session.scalars(select(AnswerRevision).order_by(AnswerRevision.id)).all()
    assert [(x.quality, x.agree) for x in rows] == [(2, True), (4, None)]
    answer = session.scalars(select(Answer)).one()
    assert answer.revision_count == 2 and answer.quality_at is not None
    assert answer.agree_at is not None and answer.agree_at <= answer.quality_at
    session.rollback()


def test_study_that_forbids_changes(app: FastAPI, make_study: Callable[..., StudySetup]) -> None:
    c = make_study(allow_answer_changes=False).reader_client(app, 0)
    post(c, 1, answer_id="f-000001", agree=True)
    assert post(c, 1, answer_id="f-000002", quality=3).status_code == 200  # filling in is fine
    r = post(c, 1, answer_id="f-000003", agree=False)
    assert (
        r.status_code == 409
        and "cannot be changed" in r.json()["error"]
        and "agree" in r.json()["error"]
    )
    assert post(c, 1, answer_id="f-000004", agree=True).status_code == 200  # the same value again


def test_bad_input_is_422_naming_the_field(
    app: FastAPI, make_study: Callable[..., StudySetup]
) -> None:
    c = make_study().reader_client(app, 0)
    cases: dict[str, dict[str, object]] = {
        "quality": {"answer_id": "x-000001", "quality": 6},
        "difficulty": {"answer_id": "x-000002", "difficulty": 0},
        "agree": {"answer_id": "x-000003", "agree": "maybe"},
        "answer_id": {"answer_id": "bad id with spaces"},
        "active_seconds": {"answer_id": "x-000004", "active_seconds": -1},
    }
    for field, body in cases.items():
        r = post(c, 1, **body)
        assert r.status_code == 422, (field, r.text)
        assert r.json()["error"].startswith(f"invalid {field}"), r.json()["error"]
    r = post(c, 1, answer_id="x-000005", is_pie=True)
    assert r.status_code == 422  # unknown fields are refused, not ignored
    assert (
        c.post(
            "/api/reader/cases/1/answer",
            content=b"{not json",
            headers={"content-type": "application/json"},
        ).status_code
        == 422
    )


def test_closed_and_draft_studies_refuse_answers(
    app: FastAPI, client: TestClient, make_study: Callable[..., StudySetup]
) -> None:
    draft = make_study(status="draft")
    c = draft.reader_client(app, 0)
    r = post(c, 1, answer_id="d-000001", agree=True)
    assert r.status_code == 409 and "not opened" in r.json()["error"]
    client.post(
        f"/api/studies/{draft.study_id}/status", json={"status": "open"}, headers=draft.coordinator
    )
    assert post(c, 1, answer_id="d-000002", agree=True).status_code == 200
    client.post(
        f"/api/studies/{draft.study_id}/status",
        json={"status": "closed"},
        headers=draft.coordinator,
    )
    r = post(c, 1, answer_id="d-000003", quality=2)
    assert r.status_code == 409 and "closed" in r.json()["error"] and "saved" in r.json()["error"]
    assert c.get("/api/reader/me").json()["accepting_answers"] is False
    # an acknowledged answer replayed after closing is still acknowledged, not refused
    assert post(c, 1, answer_id="d-000002", agree=True).json()["replayed"] is True


def test_revoke_and_reissue_keep_answers(
    app: FastAPI, client: TestClient, make_study: Callable[..., StudySetup]
) -> None:
    s = make_study()
    c = s.reader_client(app, 0)
    post(c, 1, answer_id="r-000001", agree=True, quality=3, difficulty=3)
    rid = s.invitations[0]["reader"]["id"]
    revoked = client.post(
        f"/api/studies/{s.study_id}/readers/{rid}/revoke", headers=s.coordinator
    ).json()
    assert revoked["revoked_at"]
    assert c.get("/api/reader/me").status_code == 401
    fresh = client.post(
        f"/api/studies/{s.study_id}/readers/{rid}/reissue", headers=s.coordinator
    ).json()
    assert fresh["token"] != s.invitations[0]["token"] and fresh["reader"]["revoked_at"] is None
    assert TestClient(app).get(f"/r/{s.invitations[0]['token']}").status_code == 404
    c2 = TestClient(app)
    assert c2.get(f"/r/{fresh['token']}", follow_redirects=False).status_code == 303
    assert c2.get("/api/reader/me").json()["progress"]["answered"] == 1


def test_progress_per_reader(
    app: FastAPI, client: TestClient, make_study: Callable[..., StudySetup]
) -> None:
    s = make_study(readers=3)
    c = s.reader_client(app, 1)
    for p, secs in ((1, 10.0), (2, 20.0), (3, 60.0)):
        post(
            c, p, answer_id=f"p-00000{p}", agree=True, quality=3, difficulty=2, active_seconds=secs
        )
    post(c, 4, answer_id="p-000004", agree=True, active_seconds=99.0)  # partial: not done
    rows = client.get(f"/api/studies/{s.study_id}/progress", headers=s.coordinator).json()
    assert [r["display_name"] for r in rows] == ["Dr A", "Dr B", "Dr C"]
    b = rows[1]
    assert (b["done"], b["total"], b["median_seconds_per_case"]) == (3, 40, 20.0)
    assert b["last_activity"] is not None
    assert (
        rows[0]["done"] == 0
        and rows[0]["last_activity"] is None
        and rows[0]["median_seconds_per_case"] is None
    )
