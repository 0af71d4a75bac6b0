"""Practice cases (read first by every reader, counted nowhere) and the reader profile (asked
once, checked strictly, exported)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.backend.conftest import StudySetup
from tests.backend.studies.helpers import reader_lists
from tests.conftest import Users
from tests.factories import make_dataset, make_pie_set

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database

PROFILE = [
    {
        "key": "years",
        "label": "Years reading chest X-rays",
        "kind": "integer",
        "minimum": 0,
        "maximum": 60,
    },
    {
        "key": "specialty",
        "label": "Specialty",
        "kind": "choice",
        "choices": ["Thoracic radiology", "General radiology", "Resident"],
    },
    {"key": "site", "label": "Hospital", "kind": "text", "required": False},
]


def answer_all(c: TestClient, total: int, tag: str) -> None:
    for p in range(1, total + 1):
        r = c.post(
            f"/api/reader/cases/{p}/answer",
            json={
                "answer_id": f"{tag}-{p:04d}",
                "agree": p % 2 == 0,
                "quality": 1 + p % 5,
                "difficulty": 1 + (p * 3) % 5,
                "active_seconds": 2.0,
            },
        )
        assert r.status_code == 200, r.text


@pytest.fixture
def pie_set(session: Session, tmp_path: Path) -> Callable[[int, int], int]:
    """A PIE set of n images, of which n_pies PIEs; its id."""

    def build(n: int, n_pies: int) -> int:
        ps = make_pie_set(session, make_dataset(session, tmp_path, n), n_pies=n_pies)
        session.commit()
        return ps.id

    return build


def test_practice_cases_come_first_and_leave_the_allocation_unchanged(
    client: TestClient, users: Users, session: Session, pie_set: Callable[[int, int], int]
) -> None:
    ps_id = pie_set(120, 50)
    coordinator = users.headers("coordinator")
    design = {"pie_set_id": ps_id, "cases_per_reader": 10, "overlap_cases": 4, "seed": 11}
    lists = {}
    for practice in (0, 4):
        study = client.post(
            "/api/studies",
            json={"name": f"practice {practice}", "practice_cases": practice, **design},
            headers=coordinator,
        ).json()
        assert study["practice_cases"] == practice
        r = client.post(
            f"/api/studies/{study['id']}/readers",
            json={"display_names": ["Dr A", "Dr B", "Dr C"]},
            headers=coordinator,
        )
        assert r.status_code == 201, r.text
        lists[practice] = (study["id"], reader_lists(session, study["id"]))
    plain = lists[0][1]
    study_id, with_practice = lists[4]
    firsts = {tuple(i for i, _, _ in items[:4]) for items in with_practice.values()}
    assert len(firsts) == 1, "readers were given different practice cases or orders"
    practice_images = set(next(iter(firsts)))
    for slot, items in with_practice.items():
        # every study case is where it was without practice cases, in the same order
        assert items[4:] == plain[slot]
        assert not practice_images & {i for i, _, _ in items[4:]}
    # 2 PIEs and 2 non-PIEs (pie fraction 0.5), shown to the coordinator as practice
    r = client.get(
        f"/api/studies/{study_id}/readers/{_reader_ids(client, coordinator, study_id)[0]}/assignments",
        headers=coordinator,
    )
    cases = r.json()
    assert [c["is_practice"] for c in cases] == [True] * 4 + [False] * 14
    assert sum(c["is_pie"] for c in cases[:4]) == 2
    assert not any(c["is_overlap"] for c in cases[:4])
    assert sum(c["is_overlap"] for c in cases) == 4


def _reader_ids(client: TestClient, headers: dict[str, str], study_id: int) -> list[int]:
    readers = client.get(f"/api/studies/{study_id}/readers", headers=headers).json()
    return [r["id"] for r in readers]


def test_practice_cases_count_against_the_pool(
    client: TestClient, users: Users, pie_set: Callable[[int, int], int]
) -> None:
    body = {"pie_set_id": pie_set(40, 20), "cases_per_reader": 10, "planned_readers": 4, "seed": 1}
    fits = client.post("/api/studies/preview", json=body, headers=users.headers("coordinator"))
    assert fits.json()["feasible"] is True
    r = client.post(
        "/api/studies/preview",
        json={**body, "practice_cases": 2},
        headers=users.headers("coordinator"),
    )
    assert r.json()["feasible"] is False
    assert "unassigned" in r.json()["problem"]
    r = client.post(
        "/api/studies",
        json={**body, "name": "too many", "practice_cases": 50, "planned_readers": 1},
        headers=users.headers("coordinator"),
    )
    assert r.status_code == 422
    assert "50 practice cases need 25 PIEs; the PIE set has 20" in r.json()["error"]


def test_practice_answers_are_in_no_export_statistic_or_progress(
    app: FastAPI, client: TestClient, make_study: Callable[..., StudySetup]
) -> None:
    s = make_study(readers=2, cases_per_reader=6, overlap_cases=2, practice_cases=3)
    for index in range(2):
        c = s.reader_client(app, index)
        me = c.get("/api/reader/me").json()
        assert me["practice_cases"] == 3
        assert me["progress"]["total"] == 11
        listed = c.get("/api/reader/cases").json()["cases"]
        assert [x["practice"] for x in listed] == [True] * 3 + [False] * 8
        assert c.get("/api/reader/cases/1").json()["practice"] is True
        assert c.get("/api/reader/cases/4").json()["practice"] is False
        # only the practice cases answered: nothing is counted yet
        answer_all(c, 3, f"practice-{index}")
    progress = client.get(f"/api/studies/{s.study_id}/progress", headers=s.coordinator).json()
    assert [(p["done"], p["total"]) for p in progress] == [(0, 8), (0, 8)]
    stats = client.get(f"/api/studies/{s.study_id}/stats", headers=s.coordinator).json()
    assert stats["answered_cases"] == 0
    wide = client.get(f"/api/studies/{s.study_id}/export?format=wide", headers=s.coordinator)
    rows = list(csv.DictReader(io.StringIO(wide.text)))
    assert len(rows) == 16
    assert all(row["agree"] == "" for row in rows)
    assert {int(row["position"]) for row in rows} == set(range(4, 12))
    for index in range(2):
        c = s.reader_client(app, index)
        r = c.post(
            "/api/reader/cases/4/answer",
            json={"answer_id": f"study-case-{index}", "agree": True, "quality": 2, "difficulty": 5},
        )
        assert r.status_code == 200, r.text
    stats = client.get(f"/api/studies/{s.study_id}/stats", headers=s.coordinator).json()
    assert stats["answered_cases"] == 2
    long = client.get(f"/api/studies/{s.study_id}/export?format=long", headers=s.coordinator)
    assert len(list(csv.DictReader(io.StringIO(long.text)))) == 16 * 3
    data = client.get(f"/api/studies/{s.study_id}/export?format=json", headers=s.coordinator)
    body = data.json()
    assert body["study"]["practice_cases"] == 3
    assert len(body["responses"]) == 16
    assert [r["position"] for r in body["responses"] if r["agree"] is not None] == [4, 4]


def test_profile_fields_are_checked_when_the_study_is_made(
    client: TestClient, users: Users, pie_set: Callable[[int, int], int]
) -> None:
    base = {"name": "s", "pie_set_id": pie_set(30, 10), "cases_per_reader": 4, "planned_readers": 1}
    bad: list[tuple[list[dict[str, Any]], str]] = [
        ([{"key": "s", "label": "S", "kind": "choice", "choices": ["only"]}], "2 or more"),
        ([{"key": "s", "label": "S", "kind": "choice", "choices": ["a", "A"]}], "twice"),
        ([{"key": "y", "label": "Y", "kind": "integer", "minimum": 5, "maximum": 1}], "exceeds"),
        ([{"key": "y", "label": "Y", "kind": "text", "choices": ["a", "b"]}], "only a choice"),
        ([{"key": "y", "label": "Y", "kind": "text", "minimum": 1}], "only an integer"),
        ([{"key": "Years!", "label": "Y", "kind": "text"}], "profile_fields.0.key"),
        ([{"key": "y", "label": "Y", "kind": "date"}], "profile_fields.0.kind"),
        ([{"key": "y", "label": "Y", "kind": "text"}] * 2, "key used twice: y"),
    ]
    for fields, problem in bad:
        r = client.post(
            "/api/studies",
            json={**base, "profile_fields": fields},
            headers=users.headers("coordinator"),
        )
        assert r.status_code == 422, fields
        assert problem in r.text, r.text


def test_the_profile_is_asked_once_checked_strictly_and_exported(
    app: FastAPI, client: TestClient, make_study: Callable[..., StudySetup]
) -> None:
    s = make_study(readers=2, cases_per_reader=4, profile_fields=PROFILE)
    c = s.reader_client(app, 0)
    me = c.get("/api/reader/me").json()
    assert me["profile_needed"] is True
    assert [q["key"] for q in me["profile_questions"]] == ["years", "specialty", "site"]
    # the welcome page asks; the case pages wait for the answers
    assert 'id="profile"' in c.get("/read").text
    r = c.get("/read/cases/1", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/read")
    refused = [
        ({"years": "12", "specialty": "Resident"}, "profile.years: give a whole number"),
        ({"years": 12.5, "specialty": "Resident"}, "profile.years: give a whole number"),
        ({"years": [1], "specialty": "Resident"}, "profile.years: give a whole number"),
        ({"years": 1, "specialty": 2}, "profile.specialty: give text"),
        ({"years": True, "specialty": "Resident"}, "profile.years: give a whole number"),
        ({"years": 61, "specialty": "Resident"}, "profile.years: 61 is outside 0 to 60"),
        ({"years": -1, "specialty": "Resident"}, "outside 0 to 60"),
        ({"years": 12}, "profile.specialty: 'Specialty' needs an answer"),
        ({"years": 12, "specialty": "resident"}, "profile.specialty: choose one of"),
        ({"years": 12, "specialty": "Resident", "age": 40}, "profile: no field named age"),
        ({"years": 12, "specialty": "Resident", "site": "x" * 501}, "at most 500"),
    ]
    for answers, problem in refused:
        r = c.put("/api/reader/profile", json={"answers": answers})
        assert r.status_code == 422, answers
        assert problem in r.text, r.text
    assert c.get("/api/reader/me").json()["profile_needed"] is True
    r = c.put(
        "/api/reader/profile",
        json={"answers": {"years": 12, "specialty": "Resident", "site": "  "}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["profile_needed"] is False
    assert c.get("/read/cases/1").status_code == 200
    again = c.put("/api/reader/profile", json={"answers": {"years": 3, "specialty": "Resident"}})
    assert again.status_code == 409
    assert "already given" in again.json()["error"]

    b = s.reader_client(app, 1)
    r = b.put(
        "/api/reader/profile",
        json={"answers": {"years": 30, "specialty": "Thoracic radiology", "site": "=1+1"}},
    )
    assert r.status_code == 200, r.text
    readers = client.get(f"/api/studies/{s.study_id}/readers", headers=s.coordinator).json()
    assert [r["profile"] for r in readers] == [
        {"years": 12, "specialty": "Resident"},
        {"years": 30, "specialty": "Thoracic radiology", "site": "=1+1"},
    ]
    assert all(r["profile_at"] for r in readers)

    wide = client.get(f"/api/studies/{s.study_id}/export?format=wide", headers=s.coordinator)
    rows = list(csv.DictReader(io.StringIO(wide.text)))
    assert list(rows[0])[-3:] == ["profile_years", "profile_specialty", "profile_site"]
    by_reader = {row["reader"]: row for row in rows}
    assert by_reader["Dr A"]["profile_years"] == "12"
    assert by_reader["Dr A"]["profile_site"] == ""
    assert by_reader["Dr B"]["profile_specialty"] == "Thoracic radiology"
    assert by_reader["Dr B"]["profile_site"] == "'=1+1"  # no spreadsheet formula
    long = client.get(f"/api/studies/{s.study_id}/export?format=long", headers=s.coordinator)
    assert "profile_years" in long.text.splitlines()[0]
    data = json.loads(
        client.get(f"/api/studies/{s.study_id}/export?format=json", headers=s.coordinator).text
    )
    assert [f["key"] for f in data["study"]["profile_fields"]] == ["years", "specialty", "site"]
    assert data["responses"][0]["profile"] == {"years": 12, "specialty": "Resident"}

    # the questions cannot change once a reader has answered them
    r = client.patch(
        f"/api/studies/{s.study_id}",
        json={"profile_fields": PROFILE[:1]},
        headers=s.coordinator,
    )
    assert r.status_code == 409
    assert "cannot change" in r.json()["error"]


def test_profile_questions_can_change_until_answered_and_a_study_without_asks_nothing(
    app: FastAPI, client: TestClient, make_study: Callable[..., StudySetup]
) -> None:
    s = make_study(readers=1, cases_per_reader=4)
    c = s.reader_client(app, 0)
    assert c.get("/api/reader/me").json()["profile_needed"] is False
    r = c.put("/api/reader/profile", json={"answers": {}})
    assert r.status_code == 409
    assert "asks for no profile" in r.json()["error"]
    r = client.patch(
        f"/api/studies/{s.study_id}", json={"profile_fields": PROFILE}, headers=s.coordinator
    )
    assert r.status_code == 200, r.text
    assert [f["key"] for f in r.json()["profile_fields"]] == ["years", "specialty", "site"]
    assert c.get("/api/reader/me").json()["profile_needed"] is True


def test_window_presets_are_checked_and_reach_the_reader(
    app: FastAPI, client: TestClient, make_study: Callable[..., StudySetup]
) -> None:
    s = make_study(readers=1, cases_per_reader=4)
    me = s.reader_client(app, 0).get("/api/reader/me").json()
    assert [p["key"] for p in me["window_presets"]] == ["lung", "mediastinum", "bone"]
    bad: list[tuple[list[dict[str, Any]], str]] = [
        ([{"key": "a", "label": "A", "center": 1}], "give center and width"),
        ([{"key": "a", "label": "A", "center": 1, "width": 2, "from_percentile": 3}], "give"),
        ([{"key": "a", "label": "A", "from_percentile": 50, "to_percentile": 10}], "below"),
        ([{"key": "a", "label": "A", "center": 1, "width": 0}], "window_presets.0.width"),
        ([{"key": "default", "label": "A", "center": 1, "width": 9}], "always the first"),
        ([{"key": "a", "label": "A", "center": 1, "width": 9}] * 2, "key used twice: a"),
    ]
    for presets, problem in bad:
        r = client.patch(
            f"/api/studies/{s.study_id}", json={"window_presets": presets}, headers=s.coordinator
        )
        assert r.status_code == 422, presets
        assert problem in r.text, r.text
    mine = [
        {"key": "soft", "label": "Soft", "center": 40, "width": 400},
        {"key": "dense", "label": "Dense", "from_percentile": 80, "to_percentile": 100},
    ]
    r = client.patch(
        f"/api/studies/{s.study_id}", json={"window_presets": mine}, headers=s.coordinator
    )
    assert r.status_code == 200, r.text
    me = s.reader_client(app, 0).get("/api/reader/me").json()
    assert [(p["key"], p["center"], p["from_percentile"]) for p in me["window_presets"]] == [
        ("soft", 40, None),
        ("dense", None, 80),
    ]
