"""The reader's most frequent requests (backend.reading.images: one query and one worker-thread
hop each): a case view is counted once per view, fetching ahead never is, and every one of them
refuses a reader exactly as the others do."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.reading.models import CaseView
from backend.studies.models import Assignment
from tests.backend.conftest import StudySetup

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database

ROUTES = (
    "/api/reader/cases/1",
    "/api/reader/cases/1/image",
    "/api/reader/cases/1/image?size=display",
    "/api/reader/cases/1/rendering",
    "/api/reader/cases/ahead",
)


def views(session: Session, reader_id: int) -> dict[int, tuple[int, bool]]:
    """position -> (open count, first opened no later than last)"""
    rows = session.execute(
        select(Assignment.position, CaseView.open_count, CaseView.first_opened_at, CaseView.last_opened_at)
        .join(CaseView, CaseView.assignment_id == Assignment.id)
        .where(Assignment.reader_id == reader_id)
    ).all()  # fmt: skip
    session.rollback()
    return {p: (n, first <= last) for p, n, first, last in rows}


def test_a_view_counts_each_time_and_fetching_ahead_never(
    app: FastAPI, make_study: Callable[..., StudySetup], session: Session
) -> None:
    s = make_study(readers=2, cases_per_reader=6)
    c = s.reader_client(app, 0)
    rid = s.invitations[0]["reader"]["id"]
    assert c.get("/api/reader/cases/ahead").status_code == 200
    assert c.get("/api/reader/cases/2?prefetch=true").status_code == 200
    assert c.get("/api/reader/cases/2/image").status_code == 200
    assert views(session, rid) == {}
    for _ in range(3):
        assert c.get("/api/reader/cases/2").status_code == 200
    assert c.get("/api/reader/cases/5").status_code == 200
    assert views(session, rid) == {2: (3, True), 5: (1, True)}
    assert views(session, s.invitations[1]["reader"]["id"]) == {}  # the other reader's


def test_fetching_ahead_gives_every_case_with_its_answer(
    app: FastAPI, make_study: Callable[..., StudySetup]
) -> None:
    s = make_study(readers=1, cases_per_reader=5)
    c = s.reader_client(app, 0)
    saved = c.post(
        "/api/reader/cases/3/answer",
        json={"answer_id": "ahead-0001", "agree": False, "quality": 2, "active_seconds": 4.0},
    )
    assert saved.status_code == 200, saved.text
    cases = c.get("/api/reader/cases/ahead").json()["cases"]
    assert [x["position"] for x in cases] == [1, 2, 3, 4, 5]
    assert all(
        x["total"] == 5 and x["rendering"]["image_url"].endswith("?size=full") for x in cases
    )
    answers = {x["position"]: x["answer"] for x in cases}
    assert answers[3] is not None and answers[3]["agree"] is False and answers[3]["quality"] == 2
    assert answers[3]["difficulty"] is None and answers[3]["complete"] is False
    assert all(answers[p] is None for p in (1, 2, 4, 5))


def test_each_route_refuses_as_the_others(
    app: FastAPI, client: TestClient, make_study: Callable[..., StudySetup]
) -> None:
    s = make_study(readers=2, cases_per_reader=4)
    for url in ROUTES:  # no reader session
        r = TestClient(app).get(url)
        assert r.status_code == 401, (url, r.status_code)
    browser = s.reader_client(app, 0)
    key_a = browser.get("/api/reader/me").json()["reader_key"]
    for url in ROUTES:
        assert browser.get(url, headers={"x-reader-key": key_a}).status_code == 200, url
    # reader B's link opened in the same browser: a page of A's is refused, B's own is not
    assert browser.get(f"/r/{s.invitations[1]['token']}", follow_redirects=False).status_code == 303
    key_b = browser.get("/api/reader/me").json()["reader_key"]
    for url in ROUTES:
        r = browser.get(url, headers={"x-reader-key": key_a})
        assert r.status_code == 401 and r.json()["detail"] == {"reason": "other_reader"}, url
        assert browser.get(url, headers={"x-reader-key": key_b}).status_code == 200, url
    # past the reader's own cases
    assert browser.get("/api/reader/cases/5").status_code == 404
    assert browser.get("/api/reader/cases/5/image").status_code == 404
    # B's link withdrawn: refused, and said why
    rid_b = s.invitations[1]["reader"]["id"]
    revoked = client.post(
        f"/api/studies/{s.study_id}/readers/{rid_b}/revoke", headers=s.coordinator
    )
    assert revoked.status_code == 200, revoked.text
    for url in ROUTES:
        r = browser.get(url)
        assert r.status_code == 401 and r.json()["detail"] == {"reason": "withdrawn"}, url
    # signed out: the session has ended
    other = s.reader_client(app, 0)
    token = other.cookies.get("piestudy_reader")
    assert token and other.delete("/api/reader/session").status_code == 204
    other.cookies.set("piestudy_reader", token)  # a page still holding the ended session
    for url in ROUTES:
        r = other.get(url)
        assert r.status_code == 401 and r.json()["detail"] == {"reason": "signed_out"}, url
