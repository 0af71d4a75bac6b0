"""Nothing a reader can receive says or implies PIE membership (SPEC §4, issue 2/7 point 2)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.datasets.models import Image
from backend.piesets.models import PieSetMember
from backend.reading.schemas import ReaderSchema
from backend.studies.models import Assignment, Reader, StudyCase
from tests.backend.conftest import StudySetup

TOKEN = re.compile(r"[A-Za-z0-9_-]{32,}")
WORDS = re.compile(r"pie|score|rank|is_pie|non-pie|group", re.IGNORECASE)


def shape(value: Any) -> str:
    """The structure of a JSON value (keys and nesting), as a hashable string."""

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: walk(x) for k, x in sorted(v.items())}
        if isinstance(v, list):
            return [walk(v[0])] if v else []
        return "value"  # scalars and nulls alike: a null previous_position is about position, not group

    return json.dumps(walk(value), sort_keys=True)


def header_names(r: Response) -> frozenset[str]:
    return frozenset(k.lower() for k in r.headers if k.lower() not in {"content-length", "date"})


def secrets_of(session: Session, study_id: int) -> dict[str, Any]:
    """Everything that identifies a case or its group, which no reader response may contain."""
    rows = session.execute(
        select(
            Assignment.id,
            StudyCase.id,
            Image.id,
            Image.external_id,
            Image.file_path,
            PieSetMember.score,
            PieSetMember.rank,
            Reader.slot,
        )
        .join(StudyCase, StudyCase.id == Assignment.case_id)
        .join(Image, Image.id == StudyCase.image_id)
        .join(PieSetMember, PieSetMember.image_id == Image.id)
        .join(Reader, Reader.id == Assignment.reader_id)
        .where(Reader.study_id == study_id)
    ).all()
    session.rollback()
    return {
        "strings": {r[3] for r in rows}
        | {r[4] for r in rows}
        | {f"{r[5]:.6f}" for r in rows if r[5] is not None},
        "ids": {("assignment", r[0]) for r in rows}
        | {("case", r[1]) for r in rows}
        | {("image", r[2]) for r in rows},
    }


def reader_api_paths(app: FastAPI) -> set[tuple[str, str]]:
    paths = app.openapi()["paths"]
    return {(m.upper(), p) for p, ops in paths.items() if p.startswith("/api/reader") for m in ops}


def test_reader_schemas_cannot_carry_membership() -> None:
    for name in (
        "is_pie",
        "pie_score",
        "rank",
        "group",
        "image_id",
        "external_id",
        "case_id",
        "file_name",
    ):
        with pytest.raises(TypeError, match="cannot carry"):
            type("Leaky", (ReaderSchema,), {"__annotations__": {name: int}})


def test_every_reader_route_returns_a_reader_schema(app: FastAPI) -> None:
    schema = app.openapi()
    refs = []
    for p, ops in schema["paths"].items():
        if not p.startswith("/api/reader"):
            continue
        for op in ops.values():
            content = op.get("responses", {}).get("200", {}).get("content", {})
            ref = content.get("application/json", {}).get("schema", {}).get("$ref")
            if ref:
                refs.append(ref.rsplit("/", 1)[-1])
    assert refs, "no reader JSON responses found"
    reader_models = {cls.__name__ for cls in _subclasses(ReaderSchema)}
    assert set(refs) <= reader_models, set(refs) - reader_models


def _subclasses(cls: type[BaseModel]) -> set[type[BaseModel]]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out


def test_walk_every_reader_route(
    app: FastAPI, session: Session, make_study: Callable[..., StudySetup]
) -> None:
    profile_fields = [
        {"key": "years", "label": "Years reading chest X-rays", "kind": "integer", "minimum": 0},
        {"key": "specialty", "label": "Specialty", "kind": "choice", "choices": ["Chest", "Other"]},
    ]
    s = make_study(
        readers=2,
        cases_per_reader=12,
        overlap_cases=4,
        practice_cases=2,
        profile_fields=profile_fields,
    )
    n_cases = 12 + 4 + 2
    hidden = secrets_of(session, s.study_id)
    covered: set[tuple[str, str]] = set()
    responses: list[tuple[str, Response]] = []

    for index in range(2):
        c = TestClient(app)
        entry = c.get(f"/r/{s.invitations[index]['token']}", follow_redirects=False)
        responses.append(("/r/{token}", entry))
        responses.append(("/read", c.get("/read")))
        responses.append(("me", c.get("/api/reader/me")))
        covered.add(("GET", "/api/reader/me"))
        responses.append(("cases", c.get("/api/reader/cases")))
        covered.add(("GET", "/api/reader/cases"))
        profile = c.put(
            "/api/reader/profile", json={"answers": {"years": 7 + index, "specialty": "Chest"}}
        )
        assert profile.status_code == 200, profile.text
        responses.append(("profile", profile))
        covered.add(("PUT", "/api/reader/profile"))
        by_group: dict[bool, list[tuple[str, frozenset[str], str, frozenset[str]]]] = {
            True: [],
            False: [],
        }
        rid = s.invitations[index]["reader"]["id"]
        truth = {
            a.position: bool(pie)
            for a, pie in session.execute(
                select(Assignment, PieSetMember.is_pie)
                .join(StudyCase, StudyCase.id == Assignment.case_id)
                .join(PieSetMember, PieSetMember.image_id == StudyCase.image_id)
                .where(Assignment.reader_id == rid)
            ).all()
        }
        session.rollback()
        for position in range(1, n_cases + 1):
            case = c.get(f"/api/reader/cases/{position}")
            image = c.get(f"/api/reader/cases/{position}/image")
            rendering = c.get(f"/api/reader/cases/{position}/rendering")
            assert rendering.status_code == 200, rendering.text
            responses.append(("rendering", rendering))
            answer = c.post(
                f"/api/reader/cases/{position}/answer",
                json={
                    "answer_id": f"blind-{index}-{position}",
                    "agree": True,
                    "quality": 3,
                    "difficulty": 3,
                    "active_seconds": 1.0,
                },
            )
            for r in (case, image, answer):
                assert r.status_code == 200, r.text
            responses += [("case", case), ("answer", answer)]
            responses.append(("image-headers", Response(200, headers=image.headers)))
            body = case.json()
            body["labels"] = ["..."]  # labels are ground truth, shown to readers by design
            by_group[truth[position]].append(
                (shape(body), header_names(case), shape(answer.json()), header_names(image))
            )
            assert body["image_url"] == f"/api/reader/cases/{position}/image"
        # every case in one answer, for reading offline: each exactly as its own route gives it
        ahead = c.get("/api/reader/cases/ahead")
        assert ahead.status_code == 200, ahead.text
        responses.append(("ahead", ahead))
        assert ahead.json()["cases"] == [
            c.get(f"/api/reader/cases/{p}?prefetch=true").json() for p in range(1, n_cases + 1)
        ]
        covered |= {
            ("GET", "/api/reader/cases/ahead"),
            ("GET", "/api/reader/cases/{position}"),
            ("GET", "/api/reader/cases/{position}/image"),
            ("GET", "/api/reader/cases/{position}/rendering"),
            ("POST", "/api/reader/cases/{position}/answer"),
        }
        # PIE and non-PIE cases are indistinguishable in structure and headers
        assert by_group[True] and by_group[False]
        assert set(by_group[True]) == set(by_group[False])
        # the order does not put one group first
        order = [truth[p] for p in range(1, n_cases + 1)]
        assert order != sorted(order) and order != sorted(order, reverse=True)
        responses.append(("end", c.delete("/api/reader/session")))
        covered.add(("DELETE", "/api/reader/session"))
        r = TestClient(app).post(
            "/api/reader/session", json={"invitation_token": s.invitations[index]["token"]}
        )
        responses.append(("session", r))
        covered.add(("POST", "/api/reader/session"))

    assert covered == reader_api_paths(app), "a reader route is not walked by this test"
    for name, r in responses:
        text = r.text if name != "image-headers" else ""
        text += "\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.items())
        for secret in hidden["strings"]:
            assert secret not in text, f"{name} leaks {secret!r}"
        # random tokens (session cookies, keys: 32+ URL-safe characters) can spell "pie" by
        # chance, about once in 800 tokens; they are left out of the search
        words = TOKEN.sub("", text.replace("piestudy", ""))
        assert not WORDS.search(words), f"{name} mentions membership: {WORDS.search(words)}"
        if r.content and "json" in r.headers.get("content-type", ""):
            for key, value in _pairs(r.json()):
                assert not (key.endswith("id") and isinstance(value, int)), (
                    f"{name} carries an id {key}={value}"
                )


def _pairs(value: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((k, v))
            out += _pairs(v)
    elif isinstance(value, list):
        for v in value:
            out += _pairs(v)
    return out


def test_image_etag_is_opaque_and_revalidates(
    app: FastAPI, make_study: Callable[..., StudySetup]
) -> None:
    c = make_study().reader_client(app, 0)
    r = c.get("/api/reader/cases/1/image")
    assert r.headers["cache-control"].startswith("private")
    assert "content-disposition" not in r.headers
    etag = r.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    again = c.get("/api/reader/cases/1/image", headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    assert json.dumps(dict(r.headers)).count(".png") == 0


def test_display_copy_is_made_once_and_smaller(
    app: FastAPI, make_study: Callable[..., StudySetup], settings: Any
) -> None:
    c = make_study().reader_client(app, 0)
    display = c.get("/api/reader/cases/1/image?size=display")
    full = c.get("/api/reader/cases/1/image")
    assert display.status_code == full.status_code == 200
    assert display.headers["etag"] != full.headers["etag"]
    copies = list((settings.resolved_media_dir / "display").glob("*.png"))
    assert len(copies) == 1
    made = copies[0].stat().st_mtime_ns
    assert c.get("/api/reader/cases/1/image?size=display").content == display.content
    assert copies[0].stat().st_mtime_ns == made  # made once, reused
    assert c.get("/api/reader/cases/1/image?size=huge").status_code == 422
