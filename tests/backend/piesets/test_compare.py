"""PIE sets side by side in the research pages and the API."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.auth.models import Role
from backend.piesets.service import import_pie_set
from ml.pies import find_pies, pie_scores, write_pie_set
from ml.store import PredictionStore
from tests.backend.runs.helpers import copy_store, split_dataset
from tests.conftest import Users
from tests.htmlcheck import escaped_twice

pytestmark = pytest.mark.database


def pie_sets_of(session: Session, store: Path, dataset_id: int, tmp_path: Path) -> list[int]:
    """Two PIE sets of one store, at k* = 0.8 and 0.9, as a run records them (with its store)."""
    opened = PredictionStore.open(store)
    ids = []
    for k in (0.8, 0.9):
        found = find_pies(
            pie_scores(opened.predictions, opened.meta.sparsities, k, "l1"), opened.meta.image_ids
        )
        path = tmp_path / f"pies-{k}.csv"
        write_pie_set(found, path)
        made = import_pie_set(
            session, dataset_id=dataset_id, name="regen", csv_bytes=path.read_bytes(),
            parameters={"k_star": k, "measure": "l1"}, provenance={"store": str(store)},
        )  # fmt: skip
        ids.append(made.id)
    session.commit()
    return ids


def pies_in(path: Path) -> set[str]:
    return {
        line.split(",")[0]
        for line in path.read_text().splitlines()[1:]
        if line.split(",")[1] == "1"
    }


def test_two_pie_sets_side_by_side(
    client: TestClient, users: Users, session: Session, tmp_path: Path, tiny_store: Path
) -> None:
    ds = split_dataset(session, tmp_path / "data")
    store = copy_store(tiny_store, tmp_path)
    a, b = pie_sets_of(session, store, ds.id, tmp_path)
    researcher = users.headers("rita", Role.researcher)
    r = client.get(f"/api/piesets/compare?id={a}&id={b}", headers=researcher)
    assert r.status_code == 200, r.text
    data = r.json()
    [pair] = data["pairs"]
    one, two = pies_in(tmp_path / "pies-0.8.csv"), pies_in(tmp_path / "pies-0.9.csv")
    assert pair["jaccard"] == pytest.approx(len(one & two) / len(one | two))
    assert pair["common_images"] == 20 and (pair["a"], pair["b"]) == ("regen v1", "regen v2")
    assert [p["settings"] for p in data["pie_sets"]] == [
        {"k_star": 0.8, "measure": "l1"},
        {"k_star": 0.9, "measure": "l1"},
    ]
    assert set(data["curves"]) == {"regen v1", "regen v2"}
    page = client.get(f"/research/compare?id={a}&id={b}", headers=researcher)
    assert (
        page.status_code == 200
        and 'id="curves"' in page.text
        and "data:image/png;base64," in page.text
    )
    assert f"{pair['jaccard']:.3f}" in page.text and escaped_twice(page.text) == []
    index = client.get("/research", headers=researcher).text
    assert 'action="/research/compare"' in index and f'name="id" value="{a}"' in index

    # without a store on the server: overlap and correlation, no curves, and it says why
    store.joinpath("manifest.json").rename(store / "manifest.moved")
    without = client.get(f"/research/compare?id={a}&id={b}", headers=researcher).text
    assert "no store on the server" in without and 'id="curves"' not in without


def test_what_cannot_be_compared_is_refused_with_the_reason(
    client: TestClient, users: Users, session: Session, tmp_path: Path, tiny_store: Path
) -> None:
    ds = split_dataset(session, tmp_path / "data")
    a, b = pie_sets_of(session, copy_store(tiny_store, tmp_path), ds.id, tmp_path)
    researcher = users.headers("rita", Role.researcher)
    one = client.get(f"/api/piesets/compare?id={a}", headers=researcher)
    assert one.status_code == 422 and "between 2 and 6" in one.json()["error"]
    same = client.get(f"/api/piesets/compare?id={a}&id={a}", headers=researcher)
    assert same.status_code == 422
    huge = client.get(f"/api/piesets/compare?id={a}&id={2**40}", headers=researcher)
    assert huge.status_code == 422 and "whole numbers from 1" in huge.json()["error"]
    assert (
        client.get(f"/api/piesets/compare?id={a}&id=999999", headers=researcher).status_code == 404
    )
    # coordinators read PIE sets (to choose one for a study) and may compare them; the page is
    # the researchers'
    coordinator = users.headers("cora")
    assert client.get(f"/api/piesets/compare?id={a}&id={b}", headers=coordinator).status_code == 200
    page_as_coordinator = client.get(
        f"/research/compare?id={a}&id={b}", headers=coordinator, follow_redirects=False
    )
    assert page_as_coordinator.status_code == 303  # to the sign-in page
    page = client.get(f"/research/compare?id={a}", headers=researcher)
    assert "Cannot compare these PIE sets" in page.text and "between 2 and 6" in page.text
