from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from backend.auth.models import Role
from backend.cli import app as cli
from backend.config import Settings
from backend.studies.models import Study, StudyCase
from tests.backend.studies.helpers import check_invariants, reader_lists
from tests.conftest import Users
from tests.factories import make_dataset, make_pie_set

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database


@pytest.fixture
def pie_set_id(session: Session, tmp_path: Path) -> int:
    ds = make_dataset(session, tmp_path, 400)
    ps = make_pie_set(session, ds, n_pies=150)
    session.commit()
    return ps.id


def create(
    client: TestClient, headers: dict[str, str], pie_set_id: int, **design: object
) -> dict[str, Any]:
    body = {"name": "Study", "pie_set_id": pie_set_id, "seed": 11, **design}
    r = client.post("/api/studies", json=body, headers=headers)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def enroll(client: TestClient, headers: dict[str, str], study_id: int, names: list[str]):
    return client.post(
        f"/api/studies/{study_id}/readers", json={"display_names": names}, headers=headers
    )


def test_paper_design_six_readers(
    client: TestClient, coordinator_headers: dict[str, str], pie_set_id: int, session: Session
) -> None:
    study = create(client, coordinator_headers, pie_set_id)
    assert (
        study["cases_per_reader"],
        study["pie_fraction"],
        study["overlap_cases"],
        study["status"],
    ) == (40, 0.5, 0, "draft")
    r = enroll(client, coordinator_headers, study["id"], [f"Dr {c}" for c in "ABCDEF"])
    assert r.status_code == 201, r.text
    invitations = r.json()
    assert len(invitations) == 6
    assert all(i["invitation_url"] == f"http://testserver/r/{i['token']}" for i in invitations)
    lists = reader_lists(session, study["id"])
    assert sorted(lists) == list(range(6))
    assert all(len(v) == 40 for v in lists.values())
    check_invariants(lists, 20, 20, 0)
    # the coordinator's view of one reader
    rid = invitations[0]["reader"]["id"]
    rows = client.get(
        f"/api/studies/{study['id']}/readers/{rid}/assignments", headers=coordinator_headers
    ).json()
    assert [a["position"] for a in rows] == list(range(1, 41))
    assert sum(a["is_pie"] for a in rows) == 20
    # the order is shuffled, not PIEs first
    assert [a["is_pie"] for a in rows] != sorted((a["is_pie"] for a in rows), reverse=True)


def test_tokens_are_stored_only_as_hashes(
    client: TestClient, coordinator_headers: dict[str, str], pie_set_id: int, session: Session
) -> None:
    study = create(client, coordinator_headers, pie_set_id)
    token = enroll(client, coordinator_headers, study["id"], ["Dr A"]).json()[0]["token"]
    from sqlalchemy import select

    from backend.studies.models import Reader

    stored = session.scalars(select(Reader.token_hash)).all()
    session.rollback()
    assert token not in stored and len(stored[0]) == 64
    listed = client.get(f"/api/studies/{study['id']}/readers", headers=coordinator_headers).json()
    assert "token" not in listed[0] and "token_hash" not in listed[0]


def test_overlap_cases_are_shared_and_balanced(
    client: TestClient, coordinator_headers: dict[str, str], pie_set_id: int, session: Session
) -> None:
    study = create(client, coordinator_headers, pie_set_id, overlap_cases=10, cases_per_reader=20)
    enroll(client, coordinator_headers, study["id"], ["A", "B", "C"])
    lists = reader_lists(session, study["id"])
    assert all(len(v) == 30 for v in lists.values())
    check_invariants(lists, 10, 10, 10)
    overlap_pies = {i for i, p, ov in lists[0] if ov and p}
    assert len(overlap_pies) == 5
    # each reader meets the shared cases in their own order
    orders = [[i for i, _, ov in lists[s] if ov] for s in range(3)]
    assert orders[0] != orders[1] or orders[1] != orders[2]


def test_reproducible_from_seed_and_stable_under_later_enrollment(
    client: TestClient, coordinator_headers: dict[str, str], pie_set_id: int, session: Session
) -> None:
    a = create(client, coordinator_headers, pie_set_id, seed=5)
    b = create(client, coordinator_headers, pie_set_id, seed=5)
    c = create(client, coordinator_headers, pie_set_id, seed=6)
    enroll(client, coordinator_headers, a["id"], ["1", "2"])
    before = reader_lists(session, a["id"])
    enroll(client, coordinator_headers, a["id"], ["3", "4"])
    after = reader_lists(session, a["id"])
    assert {k: after[k] for k in before} == before
    for name in ["1", "2", "3", "4"]:
        enroll(client, coordinator_headers, b["id"], [name])
    assert reader_lists(session, b["id"]) == after
    enroll(client, coordinator_headers, c["id"], ["1"])
    assert reader_lists(session, c["id"])[0] != after[0]


def test_pool_too_small_names_the_numbers(
    client: TestClient, coordinator_headers: dict[str, str], session: Session, tmp_path: Path
) -> None:
    ds = make_dataset(session, tmp_path, 260)
    ps = make_pie_set(session, ds, n_pies=112)
    session.commit()
    r = client.post(
        "/api/studies",
        json={"name": "S", "pie_set_id": ps.id, "planned_readers": 6},
        headers=coordinator_headers,
    )
    assert r.status_code == 422
    assert "6 readers x 20 PIEs need 120; the PIE set has 112 unassigned" in r.json()["error"]
    preview = client.post(
        "/api/studies/preview", json={"pie_set_id": ps.id}, headers=coordinator_headers
    ).json()
    assert preview["feasible"] is False and preview["max_readers"] == 5
    assert (preview["pool_pies"], preview["pool_non_pies"]) == (112, 148)
    study = create(client, coordinator_headers, ps.id, planned_readers=5)
    assert enroll(client, coordinator_headers, study["id"], ["A", "B", "C", "D"]).status_code == 201
    r = enroll(client, coordinator_headers, study["id"], ["E", "F"])
    assert r.status_code == 409
    assert "2 readers x 20 PIEs need 40; the PIE set has 32 unassigned" in r.json()["error"]
    assert enroll(client, coordinator_headers, study["id"], ["E"]).status_code == 201


def test_visibility_and_members(client: TestClient, users: Users, pie_set_id: int) -> None:
    owner = users.headers("owner")
    other = users.headers("other")
    admin = users.headers("root", Role.admin)
    study = create(client, owner, pie_set_id)
    assert client.get(f"/api/studies/{study['id']}", headers=other).status_code == 404
    assert client.get("/api/studies", headers=other).json() == []
    assert enroll(client, other, study["id"], ["X"]).status_code == 404
    assert client.get(f"/api/studies/{study['id']}", headers=admin).status_code == 200
    assert (
        client.post(
            f"/api/studies/{study['id']}/members", json={"username": "other"}, headers=owner
        ).status_code
        == 204
    )
    assert client.get(f"/api/studies/{study['id']}", headers=other).status_code == 200
    assert [s["id"] for s in client.get("/api/studies", headers=other).json()] == [study["id"]]
    users.create("rex", Role.researcher)
    r = client.post(f"/api/studies/{study['id']}/members", json={"username": "rex"}, headers=owner)
    assert r.status_code == 422 and "not a coordinator" in r.json()["error"]


def test_status_transitions(
    client: TestClient, coordinator_headers: dict[str, str], pie_set_id: int
) -> None:
    study = create(client, coordinator_headers, pie_set_id)
    url = f"/api/studies/{study['id']}/status"
    assert (
        client.post(url, json={"status": "closed"}, headers=coordinator_headers).status_code == 409
    )
    opened = client.post(url, json={"status": "open"}, headers=coordinator_headers).json()
    assert opened["status"] == "open" and opened["opened_at"]
    assert client.post(url, json={"status": "closed"}, headers=coordinator_headers).json()[
        "closed_at"
    ]
    r = enroll(client, coordinator_headers, study["id"], ["late"])
    assert r.status_code == 409 and "closed" in r.json()["error"]
    assert (
        client.post(url, json={"status": "open"}, headers=coordinator_headers).json()["closed_at"]
        is None
    )
    assert (
        client.post(url, json={"status": "bogus"}, headers=coordinator_headers).status_code == 422
    )


def test_bad_design_is_422_naming_the_field(
    client: TestClient, coordinator_headers: dict[str, str], pie_set_id: int
) -> None:
    r = client.post(
        "/api/studies",
        json={"name": "S", "pie_set_id": pie_set_id, "pie_fraction": 1.5},
        headers=coordinator_headers,
    )
    assert r.status_code == 422 and "pie_fraction" in r.json()["error"]
    r = client.post(
        "/api/studies", json={"name": "S", "pie_set_id": 999}, headers=coordinator_headers
    )
    assert r.status_code == 404
    study = create(client, coordinator_headers, pie_set_id)
    r = enroll(client, coordinator_headers, study["id"], ["A", "A"])
    assert r.status_code == 422 and "twice" in r.json()["error"]


def test_delete_only_without_readers(
    client: TestClient, coordinator_headers: dict[str, str], pie_set_id: int
) -> None:
    empty = create(client, coordinator_headers, pie_set_id, overlap_cases=4)
    assert (
        client.delete(f"/api/studies/{empty['id']}", headers=coordinator_headers).status_code == 204
    )
    used = create(client, coordinator_headers, pie_set_id)
    enroll(client, coordinator_headers, used["id"], ["A"])
    assert (
        client.delete(f"/api/studies/{used['id']}", headers=coordinator_headers).status_code == 409
    )


def test_database_itself_refuses_an_image_in_two_readers(
    client: TestClient, coordinator_headers: dict[str, str], pie_set_id: int, session: Session
) -> None:
    study = create(client, coordinator_headers, pie_set_id)
    enroll(client, coordinator_headers, study["id"], ["A", "B"])
    from sqlalchemy import select

    taken = session.scalars(select(StudyCase).where(StudyCase.study_id == study["id"])).first()
    assert taken is not None
    other_reader = session.scalars(
        select(StudyCase.reader_id).where(
            StudyCase.study_id == study["id"], StudyCase.reader_id != taken.reader_id
        )
    ).first()
    session.add(StudyCase(study_id=study["id"], image_id=taken.image_id, reader_id=other_reader))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_cli_study_create_and_enroll(
    env_settings: Settings, users: Users, pie_set_id: int, session: Session
) -> None:
    users.create("coco", Role.coordinator)
    runner = CliRunner()
    r = runner.invoke(
        cli,
        [
            "study",
            "create",
            "--name",
            "CLI study",
            "--pieset",
            str(pie_set_id),
            "--owner",
            "coco",
            "--seed",
            "3",
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        cli,
        ["study", "enroll", "--study", "1", "--as", "coco", "--reader", "Dr A", "--reader", "Dr B"],
    )
    assert r.exit_code == 0, r.output
    assert r.output.count("http://testserver/r/") == 2
    check_invariants(reader_lists(session, 1), 20, 20, 0)
    r = runner.invoke(
        cli,
        [
            "study",
            "create",
            "--name",
            "x",
            "--pieset",
            str(pie_set_id),
            "--owner",
            "coco",
            "--readers",
            "50",
        ],
    )
    assert r.exit_code == 2 and "too small" in r.output


def test_cli_study_create_with_practice_cases_and_a_profile(
    env_settings: Settings, users: Users, pie_set_id: int, session: Session, tmp_path: Path
) -> None:
    users.create("coco", Role.coordinator)
    questions = tmp_path / "profile.json"
    questions.write_text(
        json.dumps([{"key": "years", "label": "Years of experience", "kind": "integer"}])
    )
    base = ["study", "create", "--pieset", str(pie_set_id), "--owner", "coco"]
    runner = CliRunner()
    presets = tmp_path / "presets.json"
    presets.write_text(json.dumps([{"key": "soft", "label": "Soft", "center": 40, "width": 400}]))
    r = runner.invoke(
        cli,
        [
            *base, "--name", "P", "--practice-cases", "2", "--profile-fields", str(questions),
            "--window-presets", str(presets),
        ],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    study = session.scalars(select(Study).where(Study.name == "P")).one()
    assert study.practice_cases == 2
    assert study.profile_fields[0]["key"] == "years"
    assert study.window_presets == [{"key": "soft", "label": "Soft", "center": 40, "width": 400}]
    practice = session.scalars(
        select(StudyCase).where(StudyCase.study_id == study.id, StudyCase.practice.is_(True))
    ).all()
    assert len(practice) == 2 and all(c.reader_id is None for c in practice)
    session.rollback()
    questions.write_text(json.dumps([{"key": "years", "label": "Y", "kind": "date"}]))
    r = runner.invoke(cli, [*base, "--name", "Q", "--profile-fields", str(questions)])
    assert r.exit_code == 2 and "--profile-fields.0.kind" in r.output, r.output
    questions.write_text("{not json")
    r = runner.invoke(cli, [*base, "--name", "Q", "--profile-fields", str(questions)])
    assert r.exit_code == 2 and "is not JSON" in r.output, r.output
