"""What a save must be (strict types, something answered), whose it is (the reader key), and
which of two saves of one case wins (the newer answer, never a stale one)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.reading.models import Answer, AnswerRevision
from tests.backend.conftest import StudySetup

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database


def post(c: TestClient, position: int, headers: dict[str, str] | None = None, **body: object):
    return c.post(f"/api/reader/cases/{position}/answer", json=body, headers=headers)


def stored(session: Session) -> tuple[int, int]:
    answers = session.scalar(select(func.count()).select_from(Answer)) or 0
    revisions = session.scalar(select(func.count()).select_from(AnswerRevision)) or 0
    session.rollback()
    return answers, revisions


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quality", True),  # was stored as 1, "very poor"
        ("quality", False),
        ("quality", "3"),
        ("quality", 3.0),
        ("quality", 2.5),
        ("quality", 0),
        ("quality", 6),
        ("difficulty", " 4 "),  # was stored as 4
        ("difficulty", 4.0),
        ("difficulty", True),
        ("agree", "off"),  # was stored as false
        ("agree", "true"),
        ("agree", 1),
        ("agree", 0),
        ("agree", 1.0),
        ("flagged", "yes"),
        ("comment", 5),
    ],
)
def test_answers_are_json_booleans_and_integers_only(
    app: FastAPI, make_study: Callable[..., StudySetup], session: Session, field: str, value: object
) -> None:
    c = make_study(readers=1).reader_client(app, 0)
    r = c.post("/api/reader/cases/1/answer", json={"answer_id": "strict-0001", field: value})
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith(f"invalid {field}:"), r.json()
    assert [p["field"] for p in r.json()["detail"]] == [field]
    assert stored(session) == (0, 0)


def test_a_save_that_answers_nothing_is_refused(
    app: FastAPI, make_study: Callable[..., StudySetup], session: Session
) -> None:
    c = make_study(readers=1).reader_client(app, 0)
    for body in ({}, {"active_seconds": 12.0}, {"agree": None, "quality": None}):
        r = post(c, 1, answer_id="empty-00001", **body)
        assert r.status_code == 422 and "answers nothing" in r.json()["error"], r.text
    assert stored(session) == (0, 0)
    assert c.get("/api/reader/cases").json()["cases"][0]["started"] is False
    ok = post(c, 1, answer_id="good-000001", agree=True, quality=5, difficulty=1)
    assert ok.status_code == 200 and ok.json()["answer"]["complete"] is True


def test_a_flag_or_comment_alone_is_kept_but_starts_no_case(
    app: FastAPI, client: TestClient, make_study: Callable[..., StudySetup], session: Session
) -> None:
    s = make_study(readers=1)
    c = s.reader_client(app, 0)
    r = post(c, 2, answer_id="flag-000001", flagged=True, comment="  rib fracture?  ")
    assert r.status_code == 200, r.text
    assert r.json()["answer"] | {"flagged": True, "comment": "rib fracture?"} == r.json()["answer"]
    case = c.get("/api/reader/cases").json()["cases"][1]
    assert case == {
        "position": 2,
        "complete": False,
        "started": False,
        "flagged": True,
        "practice": False,
    }
    assert c.get("/api/reader/me").json()["progress"]["answered"] == 0
    post(c, 2, answer_id="flag-000002", agree=False, quality=2, difficulty=5)
    post(c, 2, answer_id="flag-000003", flagged=False)
    assert c.get("/api/reader/cases/2").json()["answer"]["flagged"] is False
    post(c, 3, answer_id="flag-000004", flagged=True, comment="=HYPERLINK(1)")
    wide = client.get(f"/api/studies/{s.study_id}/export?format=wide", headers=s.coordinator)
    rows = {int(r["position"]): r for r in csv.DictReader(io.StringIO(wide.text))}
    assert rows[2]["flagged"] == "0" and rows[2]["comment"] == "rib fracture?"
    assert rows[3]["flagged"] == "1" and rows[3]["comment"] == "'=HYPERLINK(1)"
    assert rows[4]["flagged"] == "0" and rows[4]["comment"] == ""
    exported = client.get(f"/api/studies/{s.study_id}/export?format=json", headers=s.coordinator)
    by_position = {r["position"]: r for r in json.loads(exported.text)["responses"]}
    assert by_position[3]["flagged"] is True and by_position[3]["comment"] == "=HYPERLINK(1)"


def test_a_page_of_another_reader_can_neither_read_nor_save(
    app: FastAPI, client: TestClient, make_study: Callable[..., StudySetup], session: Session
) -> None:
    s = make_study(readers=2)
    browser = s.reader_client(app, 0)
    key_a = browser.get("/api/reader/me").json()["reader_key"]
    # reader B opens their link in the same browser: the cookie is now B's
    assert browser.get(f"/r/{s.invitations[1]['token']}", follow_redirects=False).status_code == 303
    key_b = browser.get("/api/reader/me").json()["reader_key"]
    assert key_a != key_b and len(key_a) == 32
    stale_page = {"x-reader-key": key_a}  # A's tab, still open
    refused = post(browser, 1, stale_page, answer_id="cross-00001", agree=True)
    assert refused.status_code == 401 and refused.json()["detail"] == {"reason": "other_reader"}
    assert browser.get("/api/reader/cases/1", headers=stale_page).status_code == 401
    assert stored(session) == (0, 0)
    mine = post(browser, 1, {"x-reader-key": key_b}, answer_id="cross-00002", agree=True)
    assert mine.status_code == 200
    # A comes back through a new link: same key, and A's waiting answer is accepted as A's
    rid_a = s.invitations[0]["reader"]["id"]
    new = client.post(
        f"/api/studies/{s.study_id}/readers/{rid_a}/reissue", headers=s.coordinator
    ).json()
    assert browser.get(f"/r/{new['token']}", follow_redirects=False).status_code == 303
    assert browser.get("/api/reader/me").json()["reader_key"] == key_a
    assert post(browser, 1, stale_page, answer_id="cross-00001", agree=True).status_code == 200
    rows = client.get(
        f"/api/studies/{s.study_id}/export?format=json", headers=s.coordinator
    ).json()["responses"]
    answered = {(r["reader"], r["position"]) for r in rows if r["agree"] is not None}
    assert answered == {("Dr A", 1), ("Dr B", 1)}


def _at(seconds_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat()


def test_a_stale_answer_never_overwrites_a_newer_one(
    app: FastAPI, make_study: Callable[..., StudySetup], session: Session
) -> None:
    s = make_study(readers=1)
    laptop, tablet = s.reader_client(app, 0), s.reader_client(app, 0)
    # the laptop answered quality 2 offline a minute ago; the tablet answered 4 since
    r = post(tablet, 1, answer_id="new-0000001", quality=4, client_sent_at=_at(10))
    assert r.status_code == 200 and r.json()["superseded"] == []
    late = post(laptop, 1, answer_id="old-0000001", quality=2, agree=True, client_sent_at=_at(60))
    assert late.status_code == 200, late.text
    body = late.json()
    assert body["superseded"] == ["quality"]
    assert body["answer"]["quality"] == 4 and body["answer"]["agree"] is True
    # the stale save is in the history all the same
    assert stored(session) == (1, 2)
    # a clock running ahead cannot make an answer newer than its arrival
    ahead = post(laptop, 1, answer_id="ahead-00001", difficulty=1, client_sent_at=_at(-3600))
    assert ahead.json()["superseded"] == []
    newer = post(tablet, 1, answer_id="newer-00001", difficulty=5, client_sent_at=_at(0))
    assert newer.json()["superseded"] == [] and newer.json()["answer"]["difficulty"] == 5
    # answers queued in one tab and sent in order all apply
    for i, q in enumerate((1, 2, 3)):
        sent = post(laptop, 2, answer_id=f"queue-0000{i}", quality=q, client_sent_at=_at(30 - i))
        assert sent.json()["superseded"] == []
    assert tablet.get("/api/reader/cases/2").json()["answer"]["quality"] == 3


def test_a_name_already_enrolled_needs_confirmation(
    client: TestClient,
    make_study: Callable[..., StudySetup],
) -> None:
    s = make_study(readers=2)
    url = f"/api/studies/{s.study_id}/readers"
    again = client.post(url, json={"display_names": ["dr a", "Dr C"]}, headers=s.coordinator)
    assert again.status_code == 409, again.text
    assert again.json()["detail"] == {"duplicates": ["dr a"]}
    assert "already in this study: dr a" in again.json()["error"]
    readers = client.get(url, headers=s.coordinator).json()
    assert [r["display_name"] for r in readers] == ["Dr A", "Dr B"]
    confirmed = client.post(
        url, json={"display_names": ["Dr A"], "allow_duplicate_names": True}, headers=s.coordinator
    )
    assert confirmed.status_code == 201
    assert len(client.get(url, headers=s.coordinator).json()) == 3
