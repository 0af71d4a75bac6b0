"""Every route x every kind of caller: only the intended roles get through.

The routes come from the application's route table (API and pages), so a new route is walked
automatically, and fails here until RULES says who may call it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.auth.models import Role
from tests.backend.conftest import StudySetup
from tests.conftest import Users
from tests.factories import make_dataset, make_pie_set

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database

ANON, READER_A, READER_B, OTHER, RESEARCHER, OWNER = (
    "anonymous", "reader A", "reader B", "coordinator of another study", "researcher", "coordinator",
)  # fmt: skip
CALLERS = (ANON, READER_A, READER_B, OTHER, RESEARCHER, OWNER)
EVERYONE = set(CALLERS)
READERS = {READER_A, READER_B}
COORDINATORS = {OTHER, OWNER}
ACCOUNTS = {OTHER, RESEARCHER, OWNER}

# (method, path pattern) -> who gets through. The first match wins.
RULES: list[tuple[str, str, set[str]]] = [
    ("GET", r"/api/health", EVERYONE),
    ("GET", r"/", EVERYONE),  # the front door: home, or the sign-in page
    ("POST", r"/api/auth/login", EVERYONE),
    ("POST", r"/api/auth/logout", ACCOUNTS),
    ("GET", r"/api/auth/me", ACCOUNTS),
    ("*", r"/api/users", set()),  # admins only
    ("POST", r"/api/(datasets|piesets)/import", {RESEARCHER}),
    ("GET", r"/api/(datasets|piesets)(/.*)?", ACCOUNTS),
    ("*", r"/api/studies(/preview|/power)?", COORDINATORS),
    ("*", r"/api/studies/\{study_id\}.*", {OWNER}),
    ("POST", r"/api/reader/session", EVERYONE),  # exchanging an invitation token
    ("*", r"/api/reader/.*", READERS),
    ("*", r"/api/runs.*", {RESEARCHER}),
    ("GET", r"/r/\{token\}", EVERYONE),  # the invitation link itself
    ("GET", r"/read.*", READERS),
    ("*", r"/(login|logout)", EVERYONE),
    ("GET", r"/studies", COORDINATORS),
    ("GET", r"/studies/\{study_id\}(/report)?", {OWNER}),
    ("GET", r"/research.*", {RESEARCHER}),
]
# Valid bodies, so that a refusal can only come from authorization, never from validation.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/api/studies/{study_id}"): {"name": "renamed"},
    ("POST", "/api/studies/{study_id}/members"): {"username": "mia"},
    ("POST", "/api/studies/{study_id}/readers"): {"display_names": ["Dr Z"]},
    ("POST", "/api/studies/{study_id}/status"): {"status": "open"},
    ("POST", "/api/users"): {
        "username": "zed",
        "password": "a-long-password",
        "role": "coordinator",
    },
    ("POST", "/api/reader/cases/{position}/answer"): {
        "answer_id": "matrix-0001",
        "agree": True,
        "active_seconds": 1.0,
    },
}


def order(route: tuple[str, str]) -> tuple[int, str, str]:
    """Deletions, then sign-outs, last: they remove what later rows need."""
    method, path = route
    return (2 if "logout" in path else 1 if method == "DELETE" else 0, path, method)


def route_table(app: FastAPI) -> list[tuple[str, str]]:
    out = set()
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            if getattr(route, "path", "").startswith("/api/"):
                out |= {(m, route.path) for m in route.methods - {"HEAD"}}  # type: ignore[attr-defined]
            continue
        for c in contexts():
            out |= {(m, c.path) for m in c.methods - {"HEAD"}}
    return sorted(out, key=order)


def allowed(method: str, path: str) -> set[str]:
    for m, pattern, who in RULES:
        if m in ("*", method) and re.fullmatch(pattern, path):
            return who
    raise AssertionError(f"{method} {path} is not in the authorization matrix: add a rule")


def denied(path: str, status: int, location: str) -> bool:
    if path in ("/logout", "/"):
        return status != 303  # signs out whoever asks / sends each visitor on, always a redirect
    if status in (401, 403):
        return True
    if status == 303 and location.endswith("/login"):
        return True  # pages send the signed-out to the sign-in page
    # a study, or a reader's page, that is not yours does not exist for you
    return status == 404 and ("{study_id}" in path or path.startswith("/read"))


def test_every_route_admits_exactly_its_roles(
    app: FastAPI, client: TestClient, users: Users, session: Session, tmp_path: Path,
    make_study: Callable[..., StudySetup],
) -> None:  # fmt: skip
    study = make_study(readers=3)  # readers A, B and a third one, C, that the owner may revoke
    owner = study.coordinator
    other = users.headers("otto", Role.coordinator)
    ds = make_dataset(session, tmp_path / "other", 40, name="theirs")
    ps = make_pie_set(session, ds, n_pies=10, name="theirs")
    ids = {"dataset_id": ds.id, "pie_set_id": ps.id}
    session.commit()
    own = client.post(
        "/api/studies", headers=other,
        json={"name": "Otto's", "pie_set_id": ids["pie_set_id"], "cases_per_reader": 4, "planned_readers": 1},
    )  # fmt: skip
    assert own.status_code == 201
    researcher = users.headers("rita", Role.researcher)
    member = users.create("mia", Role.coordinator)
    client.post(f"/api/studies/{study.study_id}/members", json={"username": "mia"}, headers=owner)
    run = client.post(
        "/api/runs", headers=researcher, json={"dataset_id": ids["dataset_id"], "name": "x"}
    ).json()
    page = client.get(f"/api/datasets/{ids['dataset_id']}/images", headers=researcher).json()
    image_id = page["items"][0]["id"]
    values = {
        "study_id": study.study_id, "reader_id": study.invitations[2]["reader"]["id"],
        "user_id": member.id, "position": 1, "run_id": run["id"], "image_id": image_id,
        "token": study.invitations[0]["token"], **ids,
    }  # fmt: skip
    callers: dict[str, TestClient] = {}
    for name, headers in ((OTHER, other), (RESEARCHER, researcher), (OWNER, owner)):
        callers[name] = TestClient(app, headers=headers)
    callers[ANON] = TestClient(app)
    callers[READER_A] = study.reader_client(app, 0)
    callers[READER_B] = study.reader_client(app, 1)

    table = route_table(app)
    assert len(table) > 40
    wrong = []
    for method, path in table:
        url = re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)
        who = allowed(method, path)
        body = BODIES.get((method, path))
        if (method, path) == ("POST", "/api/studies"):
            body = {
                "name": "M",
                "pie_set_id": ids["pie_set_id"],
                "cases_per_reader": 2,
                "planned_readers": 1,
            }
        elif (method, path) == ("POST", "/api/studies/preview"):
            body = {"pie_set_id": ids["pie_set_id"]}
        elif (method, path) == ("POST", "/api/runs"):
            body = {"dataset_id": ids["dataset_id"], "name": "x"}
        for caller in sorted(CALLERS, key=lambda c: c == OWNER):
            client_ = callers[caller]
            if path == "/r/{token}":  # whoever opens the link becomes that reader: a fresh browser
                client_ = TestClient(app, headers=dict(client_.headers))
            r = client_.request(method, url, json=body, follow_redirects=False)
            assert r.status_code < 500, (
                f"{method} {path} as {caller}: {r.status_code} {r.text[:200]}"
            )
            if denied(path, r.status_code, r.headers.get("location", "")) == (caller in who):
                wrong.append(f"{method} {path} as {caller}: {r.status_code}")
    assert not wrong, "\n".join(wrong)


def test_readers_only_ever_reach_their_own_cases(
    app: FastAPI, make_study: Callable[..., StudySetup]
) -> None:
    study = make_study(readers=2, cases_per_reader=6)
    a, b = study.reader_client(app, 0), study.reader_client(app, 1)

    def images(c: TestClient) -> set[str]:
        n = c.get("/api/reader/me").json()["progress"]["total"]
        return {
            hashlib.sha256(c.get(f"/api/reader/cases/{p}/image").content).hexdigest()
            for p in range(1, n + 1)
        }

    mine, theirs = images(a), images(b)
    assert len(mine) == len(theirs) == 6 and not mine & theirs
    assert a.get("/api/reader/cases/7").status_code == 404  # past the reader's own cases
    # no reader route takes a study, reader, image or PIE set id: positions are all there is
    assert not [
        p
        for _m, p in route_table(app)
        if p.startswith("/api/reader") and re.search(r"\{(?!position)", p)
    ]
