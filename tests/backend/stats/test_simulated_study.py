"""A whole study through the HTTP API: 6 readers x 40 cases, then export and statistics checked
against numbers this test computes on its own (scipy, numpy) from the answers it gave."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from scipy.stats import kruskal
from sqlalchemy import select

from backend.datasets.models import Image
from backend.piesets.models import PieSetMember
from backend.studies.models import Study
from tests.backend.conftest import StudySetup

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database

QUESTIONS = ("agree", "quality", "difficulty")


def run_reader(
    c: TestClient, rng: random.Random, group_of: dict[int, bool]
) -> dict[int, dict[str, Any]]:
    """Answer every case the way a reader would: next case, look, answer; sometimes revise."""
    given: dict[int, dict[str, Any]] = {}
    while (position := c.get("/api/reader/me").json()["next_position"]) is not None:
        case = c.get(f"/api/reader/cases/{position}").json()
        assert c.get(case["image_url"]).status_code == 200
        pie = group_of[position]
        answer: dict[str, Any] = {
            "agree": rng.random() < (0.55 if pie else 0.6),
            "quality": rng.choice([2, 3, 3, 4, 4] if pie else [3, 4, 4, 5, 4]),
            "difficulty": rng.choice([2, 3, 3, 4] if pie else [1, 2, 2, 3]),
            "active_seconds": round(rng.uniform(5, 60), 3),
        }
        if rng.random() < 0.2:  # the reader's own notes
            answer |= {"flagged": True, "comment": f"note on {position}"}
        # half the time the three answers come in two saves, as a reader clicks through
        if rng.random() < 0.5:
            first = {
                "answer_id": f"{position}-a-{rng.getrandbits(64):016x}",
                "agree": answer["agree"],
                "active_seconds": 2.0,
            }
            assert c.post(f"/api/reader/cases/{position}/answer", json=first).status_code == 200
        body = {"answer_id": f"{position}-b-{rng.getrandbits(64):016x}", **answer}
        r = c.post(f"/api/reader/cases/{position}/answer", json=body)
        assert r.status_code == 200, r.text
        if rng.random() < 0.1:  # a change of mind, kept in the history
            answer["quality"] = 1 + answer["quality"] % 5
            body = {
                "answer_id": f"{position}-c-{rng.getrandbits(64):016x}",
                "quality": answer["quality"],
                "active_seconds": answer["active_seconds"] + 1,
            }
            answer["active_seconds"] += 1
            assert c.post(f"/api/reader/cases/{position}/answer", json=body).status_code == 200
        given[position] = answer | {"labels": case["labels"]}  # what the reader was shown
    return given


@pytest.mark.slow
def test_six_readers_forty_cases(
    app: FastAPI, client: TestClient, make_study: Callable[..., StudySetup]
) -> None:
    s = make_study(readers=6, n_images=300, n_pies=130)
    rng = random.Random(2023)
    truth: list[dict[str, Any]] = []  # one record per reader x case, as the test knows it
    for index, invitation in enumerate(s.invitations):
        rid = invitation["reader"]["id"]
        rows = client.get(
            f"/api/studies/{s.study_id}/readers/{rid}/assignments", headers=s.coordinator
        ).json()
        group_of = {r["position"]: r["is_pie"] for r in rows}
        image_of = {r["position"]: r["external_id"] for r in rows}
        given = run_reader(s.reader_client(app, index), rng, group_of)
        assert sorted(given) == list(range(1, 41))
        for position, answer in given.items():
            truth.append(
                {
                    "reader_id": rid,
                    "reader": invitation["reader"]["display_name"],
                    "image": image_of[position],
                    "is_pie": group_of[position],
                    **answer,
                }
            )

    assert len(truth) == 240 and sum(t["is_pie"] for t in truth) == 120
    assert any(t.get("flagged") for t in truth)
    with app.state.sessionmaker() as session:  # the PIE set's own scores and ranks
        members = {
            external: (score, rank)
            for external, score, rank in session.execute(
                select(Image.external_id, PieSetMember.score, PieSetMember.rank)
                .join(PieSetMember, PieSetMember.image_id == Image.id)
                .join(Study, Study.pie_set_id == PieSetMember.pie_set_id)
                .where(Study.id == s.study_id)
            )
        }
    key = {(t["reader_id"], t["image"]): t for t in truth}

    # progress
    progress = client.get(f"/api/studies/{s.study_id}/progress", headers=s.coordinator).json()
    assert [(p["done"], p["total"]) for p in progress] == [(40, 40)] * 6

    # long CSV: one row per reader x case x question
    r = client.get(f"/api/studies/{s.study_id}/export?format=long", headers=s.coordinator)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    long_rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(long_rows) == 720
    assert list(long_rows[0]) == [
        "study_id",
        "study",
        "reader_id",
        "reader",
        "case_id",
        "image",
        "labels",
        "group",
        "pie_score",
        "pie_rank",
        "overlap",
        "question",
        "answer",
        "answered_at",
        "seconds_on_case",
        "flagged",
        "comment",
    ]
    for row in long_rows:
        t = key[(int(row["reader_id"]), row["image"])]
        expected = (
            ("yes" if t["agree"] else "no")
            if row["question"] == "agree"
            else str(t[row["question"]])
        )
        assert row["answer"] == expected
        assert row["group"] == ("PIE" if t["is_pie"] else "non-PIE")
        assert float(row["seconds_on_case"]) == pytest.approx(t["active_seconds"], abs=1e-3)
        assert row["answered_at"] and row["reader"] == t["reader"]
        assert row["labels"].split("|") == t["labels"]
        assert (row["flagged"], row["comment"]) == (
            ("1", t["comment"]) if t.get("flagged") else ("0", "")
        )
        score, rank = members[t["image"]]
        assert (float(row["pie_score"]), int(row["pie_rank"])) == (score, rank)
    assert {(int(r["reader_id"]), r["image"], r["question"]) for r in long_rows} == {
        (k[0], k[1], q) for k in key for q in QUESTIONS
    }

    # wide CSV: one row per reader x case
    wide = list(
        csv.DictReader(
            io.StringIO(
                client.get(
                    f"/api/studies/{s.study_id}/export?format=wide", headers=s.coordinator
                ).text
            )
        )
    )
    assert len(wide) == 240
    for row in wide:
        t = key[(int(row["reader_id"]), row["image"])]
        assert (row["agree"], row["quality"], row["difficulty"]) == (
            "yes" if t["agree"] else "no",
            str(t["quality"]),
            str(t["difficulty"]),
        )
        assert row["completed_at"] and row["first_opened_at"] <= row["completed_at"]
        assert row["labels"].split("|") == t["labels"] and row["flagged"] == str(
            int(bool(t.get("flagged")))
        )
        assert (float(row["pie_score"]), int(row["pie_rank"])) == members[t["image"]]

    # JSON
    doc = json.loads(
        client.get(f"/api/studies/{s.study_id}/export?format=json", headers=s.coordinator).text
    )
    assert doc["study"]["id"] == s.study_id and len(doc["responses"]) == 240
    for x in doc["responses"]:
        t = key[(x["reader_id"], x["image"])]
        assert (x["quality"], x["labels"], x["comment"]) == (
            t["quality"],
            t["labels"],
            t.get("comment"),
        )
        assert (x["pie_score"], x["pie_rank"]) == members[x["image"]]

    # statistics, against an independent computation
    stats = client.get(f"/api/studies/{s.study_id}/stats", headers=s.coordinator).json()
    assert stats["readers"] == 6 and stats["answered_cases"] == 240
    assert stats["inclusion"]["rule"] == "complete" and stats["inclusion"]["cases"] == 240
    assert stats["inclusion"]["text"].startswith("complete cases only")
    by_q = {q["question"]: q for q in stats["questions"]}
    check_question_stats(by_q, truth)
    ps = [by_q[q]["reader_aware"]["p"] for q in QUESTIONS]
    order = np.argsort(ps)  # Holm by hand: step down, monotone
    holm = np.maximum.accumulate([min(1.0, (3 - i) * ps[j]) for i, j in enumerate(order)])
    for i, j in enumerate(order):
        assert by_q[QUESTIONS[j]]["reader_aware"]["p_holm"] == pytest.approx(holm[i])
    # leaving a reader out counts the other five, and says so
    left_out = stats["per_reader"][0]["reader_id"]
    five = client.get(
        f"/api/studies/{s.study_id}/stats?exclude_reader={left_out}", headers=s.coordinator
    ).json()
    assert five["inclusion"]["cases"] == 200 and five["inclusion"]["excluded_readers"] == [left_out]
    assert f"readers left out: {left_out}" in five["inclusion"]["text"]
    check_question_stats(
        {q["question"]: q for q in five["questions"]},
        [t for t in truth if t["reader_id"] != left_out],
    )
    for reader_stats in stats["per_reader"]:
        mine = [t for t in truth if t["reader_id"] == reader_stats["reader_id"]]
        assert len(mine) == 40
        check_question_stats({q["question"]: q for q in reader_stats["questions"]}, mine)


def check_question_stats(by_q: dict[str, dict[str, Any]], truth: list[dict[str, Any]]) -> None:
    for question in QUESTIONS:
        pie = np.array([float(t[question]) for t in truth if t["is_pie"]])
        non = np.array([float(t[question]) for t in truth if not t["is_pie"]])
        got = by_q[question]
        for side, values in (("pie", pie), ("non_pie", non)):
            assert got[side]["n"] == values.size
            assert got[side]["mean"] == pytest.approx(values.mean(), abs=1e-12)
            assert got[side]["sd"] == pytest.approx(values.std(ddof=1), abs=1e-12)
            assert got[side]["median"] == pytest.approx(float(np.median(values)))
            if question == "agree":
                assert got[side]["percent_yes"] == pytest.approx(100 * values.mean(), abs=1e-12)
        if len(np.unique(np.concatenate([pie, non]))) < 2:
            assert got["h"] is None and "equal" in got["note"]
            continue
        ref = kruskal(pie, non)
        assert got["h"] == pytest.approx(ref.statistic, abs=1e-12)
        assert got["p"] == pytest.approx(ref.pvalue, abs=1e-12)
        assert got["df"] == 1
        n = pie.size + non.size
        assert got["epsilon_squared"] == pytest.approx(ref.statistic / (n - 1), abs=1e-12)
        # readers as clusters: Cliff's delta within each reader, weighted m*k/(m+k)
        deltas, weights = [], []
        for rid in sorted({t["reader_id"] for t in truth}):
            x = np.array(
                [float(t[question]) for t in truth if t["reader_id"] == rid and t["is_pie"]]
            )
            y = np.array(
                [float(t[question]) for t in truth if t["reader_id"] == rid and not t["is_pie"]]
            )
            if x.size and y.size:
                deltas.append(np.sign(x[:, None] - y[None, :]).mean())
                weights.append(x.size * y.size / (x.size + y.size))
        effect = got["effect"]
        assert effect["estimate"] == pytest.approx(np.dot(deltas, weights) / sum(weights))
        low, high = effect["ci"]
        assert low <= effect["estimate"] <= high and low >= -1 and high <= 1
        if question == "agree":
            assert effect["percent_yes_difference"] == pytest.approx(100 * effect["estimate"])
        if got["reader_aware"] is not None:
            assert 0 < got["reader_aware"]["p"] <= got["reader_aware"]["p_holm"] <= 1


def test_stats_before_any_answer_say_why(
    client: TestClient, make_study: Callable[..., StudySetup]
) -> None:
    s = make_study(readers=1)
    stats = client.get(f"/api/studies/{s.study_id}/stats", headers=s.coordinator).json()
    for q in stats["questions"]:
        assert q["h"] is None and "at least 2 answers in each group" in q["note"]
        assert q["pie"]["n"] == 0


def test_export_escapes_spreadsheet_formulas(
    app: FastAPI, client: TestClient, make_study: Callable[..., StudySetup]
) -> None:
    s = make_study(readers=1)
    c = s.reader_client(app, 0)
    c.post("/api/reader/cases/1/answer", json={"answer_id": "inj-000001", "agree": True})
    rid = s.invitations[0]["reader"]["id"]
    from sqlalchemy import update

    from backend.studies.models import Reader

    with app.state.sessionmaker() as session:
        session.execute(
            update(Reader).where(Reader.id == rid).values(display_name='=HYPERLINK("http://x")')
        )
        session.commit()
    text = client.get(f"/api/studies/{s.study_id}/export?format=long", headers=s.coordinator).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert all(r["reader"] == '\'=HYPERLINK("http://x")' for r in rows)


def test_other_coordinators_cannot_export(
    client: TestClient, users: Any, make_study: Callable[..., StudySetup]
) -> None:
    s = make_study(readers=1)
    other = users.headers("someone-else")
    assert client.get(f"/api/studies/{s.study_id}/export", headers=other).status_code == 404
    assert client.get(f"/api/studies/{s.study_id}/stats", headers=other).status_code == 404
    assert (
        client.get(
            f"/api/studies/{s.study_id}/export?format=xml", headers=s.coordinator
        ).status_code
        == 422
    )
