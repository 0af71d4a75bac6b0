"""The statistics report (print-ready HTML) and the audit export of every answer revision,
checked against the saves this test sent and the statistics API."""

from __future__ import annotations

import csv
import html as markup
import io
import itertools
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any

import pytest
import scipy
import sklearn
import statsmodels
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.auth.models import Role
from tests.backend.conftest import StudySetup
from tests.backend.studies.test_pages import signed_in
from tests.conftest import Users
from tests.factories import PASSWORD
from tests.htmlcheck import escaped_twice

pytestmark = pytest.mark.database

Save = dict[str, Any]


def answer_cases(c: TestClient, rng: random.Random, cases: int, reader_id: int) -> list[Save]:
    """Answer the first `cases` cases in two or three saves each; every save as it was sent."""
    sent: list[Save] = []
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    for position in range(1, cases + 1):
        assert c.get(f"/api/reader/cases/{position}").status_code == 200
        saves: list[Save] = [
            {"agree": rng.random() < 0.6, "active_seconds": 3.0},
            {"quality": rng.randint(1, 5), "difficulty": rng.randint(1, 5), "active_seconds": 9.5},
        ]
        if rng.random() < 0.3:  # a change of mind, and a note
            saves.append({"quality": rng.randint(1, 5), "flagged": True, "comment": "=check",
                          "active_seconds": 12.25})  # fmt: skip
        for k, given in enumerate(saves):
            body: Save = {
                "answer_id": f"r{reader_id}-{position}-{k}-{rng.getrandbits(48):012x}",
                **given,
            }
            if k == 0:  # the browser's own clock, as the reading page sends it
                body["client_sent_at"] = (start + timedelta(minutes=position)).isoformat()
            r = c.post(f"/api/reader/cases/{position}/answer", json=body)
            assert r.status_code == 200, r.text
            sent.append({**body, "reader_id": reader_id, "position": position, "revision": k + 1})
    return sent


@pytest.fixture
def answered(app: FastAPI, make_study: Callable[..., StudySetup]) -> tuple[StudySetup, list[Save]]:
    """3 readers: two answer all 40 cases, the third only 6 (too few for a test of their own)."""
    s = make_study(readers=3, n_images=200, n_pies=60)
    rng = random.Random(11)
    sent: list[Save] = []
    for index, cases in enumerate((40, 40, 6)):
        sent += answer_cases(
            s.reader_client(app, index), rng, cases, s.invitations[index]["reader"]["id"]
        )
    return s, sent


def test_the_audit_export_holds_every_revision_as_sent(
    app: FastAPI, client: TestClient, users: Users, answered: tuple[StudySetup, list[Save]]
) -> None:
    s, sent = answered
    r = client.get(f"/api/studies/{s.study_id}/audit", headers=s.coordinator)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert re.search(
        r'attachment; filename="piestudy-\d+-Reading-study-audit\.csv"',
        r.headers["content-disposition"],
    )
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == len(sent) == len({row["client_answer_id"] for row in rows})
    by_id = {row["client_answer_id"]: row for row in rows}
    for save in sent:
        row = by_id[save["answer_id"]]
        assert (int(row["reader_id"]), int(row["position"]), int(row["revision"])) == (
            save["reader_id"], save["position"], save["revision"],
        )  # fmt: skip
        assert row["agree"] == ("" if "agree" not in save else "yes" if save["agree"] else "no")
        assert row["quality"] == str(save.get("quality", ""))
        assert row["difficulty"] == str(save.get("difficulty", ""))
        assert row["flagged"] == ("1" if save.get("flagged") else "")
        assert row["comment"] == ("'=check" if "comment" in save else "")  # never a formula
        assert float(row["active_seconds"]) == save["active_seconds"]
        assert row["practice"] == "0" and row["group"] in ("PIE", "non-PIE")
        if "client_sent_at" in save:
            assert datetime.fromisoformat(row["client_sent_at"]) == datetime.fromisoformat(
                save["client_sent_at"]
            )
        else:
            assert row["client_sent_at"] == ""
    # in order: reader by reader, case by case, each case's saves as they arrived
    keys = [(row["reader_id"], int(row["position"]), row["received_at"]) for row in rows]
    for a, b in itertools.pairwise(keys):
        if a[:2] == b[:2]:
            assert a[2] <= b[2]
    assert client.get(f"/api/studies/{s.study_id}/audit").status_code == 401
    researcher = users.headers("rita", Role.researcher)
    assert client.get(f"/api/studies/{s.study_id}/audit", headers=researcher).status_code == 403
    other = users.headers("olga", Role.coordinator)
    assert client.get(f"/api/studies/{s.study_id}/audit", headers=other).status_code == 404


def test_the_report_states_the_design_the_tables_and_the_methods(
    app: FastAPI, client: TestClient, users: Users, answered: tuple[StudySetup, list[Save]]
) -> None:
    s, _ = answered
    c = TestClient(app)
    assert (
        c.post("/login", data={"username": "coordinator", "password": PASSWORD}).status_code == 200
    )
    stats = client.get(f"/api/studies/{s.study_id}/stats", headers=s.coordinator).json()
    r = c.get(f"/studies/{s.study_id}/report")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "<style>" in html and 'rel="stylesheet"' not in html  # self-contained
    assert "@page" in html and "@media print" in html
    assert escaped_twice(html) == []  # no entity escaped twice
    for section in (
        'id="design"',
        'id="stats"',
        'id="stats-readers"',
        'id="per-reader"',
        'id="agreement"',
        'id="fig6"',
        'id="methods"',
    ):
        assert section in html, section
    assert stats["inclusion"]["text"] in html
    assert "PIE fraction 0.5" in html and "Seed</dt><dd>3 " in html
    # the reader-aware P values and effects, as the API computed them
    for q in stats["questions"]:
        assert f"{q['reader_aware']['p_holm']:.3g}" in html
        assert f"{q['effect']['estimate']:+.3f}" in html
    # a table body per reader, and the third reader's note
    assert html.count('<tbody data-reader-id="') == 3
    third = next(p for p in stats["per_reader"] if p["answers"] < 10)
    assert third["note"] and "too few answers" in third["note"]
    assert f"{third['reader']}: {third['note']}." in markup.unescape(html)
    # a point per reader and group in each of the three panels of the figure
    points = sum(
        g["mean"] is not None
        for p in stats["per_reader"]
        for q in p["questions"]
        for g in (q["pie"], q["non_pie"])
    )
    assert html.count('class="reader-point"') == points >= 16
    # the methods paragraph, written from what was run
    methods = html[html.index('id="methods"') :]
    assert "4,999 permutations" in methods and "2,000 resamples" in methods and "Holm" in methods
    assert (
        f"SciPy {scipy.__version__}" in methods
        and f"statsmodels {statsmodels.__version__}" in methods
    )
    assert f"krippendorff {metadata.version('krippendorff')}" in methods
    assert f"scikit-learn {sklearn.__version__}" in methods
    assert "piestudy 0.1.0" in methods and "seed 3" in methods
    assert not re.search(r"&amp;(#?\w+);", html), "an entity escaped twice"

    download = c.get(f"/studies/{s.study_id}/report?download=1")
    assert download.status_code == 200
    assert re.search(
        r'attachment; filename="piestudy-\d+-Reading-study-report\.html"',
        download.headers["content-disposition"],
    )

    left_out = stats["per_reader"][0]["reader_id"]
    fewer = c.get(f"/studies/{s.study_id}/report?include=all&exclude_reader={left_out}").text
    assert f"readers left out: {left_out}" in fewer and "every answer given" in fewer
    assert fewer.count('<tbody data-reader-id="') == 2
    assert (
        f'href="/studies/{s.study_id}?include=all&amp;exclude_reader={left_out}"' in fewer
    )  # the way back keeps the choice

    anonymous = TestClient(app).get(f"/studies/{s.study_id}/report", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login"
    other = signed_in(app, users, "olga", Role.coordinator)
    assert other.get(f"/studies/{s.study_id}/report").status_code == 404


def test_the_study_page_shows_readers_and_links_the_report(
    app: FastAPI, answered: tuple[StudySetup, list[Save]]
) -> None:
    s, _ = answered
    c = TestClient(app)
    assert (
        c.post("/login", data={"username": "coordinator", "password": PASSWORD}).status_code == 200
    )
    page = c.get(f"/studies/{s.study_id}?include=all").text
    assert 'id="per-reader"' in page and "too few answers" in page
    assert f'href="/studies/{s.study_id}/report?include=all"' in page
    assert f'href="/api/studies/{s.study_id}/audit"' in page
    assert 'value="all" checked' in page
