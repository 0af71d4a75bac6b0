"""The worker in this process: a run's PIE set, failures with their reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from backend.auth.models import Role
from backend.config import Settings
from backend.datasets.models import Dataset, Image
from backend.piesets.models import PieSet, PieSetMember
from backend.runs.models import RunStatus
from backend.runs.service import work_dir
from ml.pies import find_pies, pie_scores
from ml.store import PredictionStore
from tests.backend.runs.helpers import (
    copy_store,
    fetch,
    split_dataset,
    start,
    worker,
)
from tests.conftest import Users
from tests.factories import make_pie_set
from tests.htmlcheck import escaped_twice

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database


@pytest.mark.slow
def test_a_run_makes_a_new_pie_set_version_and_studies_keep_theirs(
    client: TestClient, users: Users, session: Session, tmp_path: Path, engine: Engine,
    settings: Settings,
) -> None:  # fmt: skip
    ds = split_dataset(session, tmp_path)
    v1 = make_pie_set(session, session.get_one(Dataset, ds.id), n_pies=8, name="regen")
    v1_id = v1.id
    session.commit()
    coordinator = users.headers("cora")
    study = client.post(
        "/api/studies",
        json={"name": "S", "pie_set_id": v1_id, "cases_per_reader": 6, "planned_readers": 1},
        headers=coordinator,
    )
    assert study.status_code == 201, study.text
    researcher = users.headers("rita", Role.researcher)
    run = start(client, researcher, ds)

    assert worker(engine, settings).serve(drain=True) == 1
    done = client.get(f"/api/runs/{run['id']}", headers=researcher).json()
    assert done["status"] == "succeeded", done["error"]
    assert done["progress"] == 1.0 and done["finished_at"] and done["attempts"] == 1
    assert set(done["timings"]) >= {"decode", "seeds", "analysis", "report"}
    for line in ("claimed by worker", "seed 0:", "seed 1:", "PIEs of", "succeeded"):
        assert line in done["log"], line

    session.rollback()
    v2 = session.get(PieSet, done["result_pie_set_id"])
    assert v2 is not None and v2.name == "regen" and v2.version == 2
    assert v2.provenance["run_id"] == run["id"] and v2.provenance["run_source"] == "train"
    assert v2.provenance["report"].endswith(".html") and v2.parameters["seeds"] == [0, 1]
    assert v2.member_count == 20  # the test split
    v2_id = v2.id
    session.rollback()  # (SQLite: a reading session holds the write lock until it ends)
    page = client.get(f"/research/piesets/{v2_id}/report", headers=researcher)
    assert page.status_code == 200 and "<html" in page.text.lower()
    # the report says where it comes from; Fig. 1 has the run's weight histogram
    assert f"run {run['id']} · smallcnn (from scratch), 2 seeds · global L1 pruning" in page.text
    assert escaped_twice(page.text) == [] and f'href="/research/piesets/{v2_id}"' in page.text
    analysis = json.loads((work_dir(settings, run["id"]) / "report" / "analysis.json").read_text())
    assert (
        analysis["weight_histogram"] is not None and sum(analysis["weight_histogram"]["counts"]) > 0
    )
    assert analysis["provenance"]["split_sizes"] == {"train": 20, "val": 20, "test": 20}
    assert analysis["provenance"]["model"]["epochs"] == ("1 per seed (at most 1, early stopping)")
    assert (
        client.get(f"/api/studies/{study.json()['id']}", headers=coordinator).json()["pie_set_id"]
        == v1_id
    )

    # the finished run's store is a source of its own: a second run from it, no training
    store = work_dir(settings, run["id"]) / "store"
    again = start(
        client, researcher, ds, source="store",
        params={"store_path": str(store), "k_star": 0.8, "measure": "l1"},
    )  # fmt: skip
    worker(engine, settings).serve(drain=True)
    second = client.get(f"/api/runs/{again['id']}", headers=researcher).json()
    assert second["status"] == "succeeded", second["error"]
    v3 = session.get(PieSet, second["result_pie_set_id"])
    assert v3 is not None and v3.version == 3 and v3.parameters["k_star"] == 0.8
    # the measure is the run's, recorded in the provenance, and the PIEs are the store's by it
    assert v3.parameters["measure"] == "l1" and v3.provenance["summary"]["measure"] == "l1"
    opened = PredictionStore.open(store)
    expected = find_pies(
        pie_scores(opened.predictions, opened.meta.sparsities, 0.8, "l1"), opened.meta.image_ids
    )
    got = {
        external
        for (external,) in session.execute(
            select(Image.external_id)
            .join(PieSetMember, PieSetMember.image_id == Image.id)
            .where(PieSetMember.pie_set_id == v3.id, PieSetMember.is_pie.is_(True))
        )
    }
    assert got == {i for i, pie in zip(expected.image_ids, expected.is_pie, strict=True) if pie}
    session.rollback()


def test_a_failing_run_is_failed_with_its_reason_and_makes_nothing(
    client: TestClient, users: Users, session: Session, tmp_path: Path, engine: Engine,
    settings: Settings,
) -> None:  # fmt: skip
    ds = split_dataset(session, tmp_path)
    researcher = users.headers("rita", Role.researcher)
    for image in Path(ds.image_root).glob("img_0000*.png"):
        image.unlink()  # the dataset's files went missing since it was imported
    run = start(client, researcher, ds)
    worker(engine, settings).serve(drain=True)
    failed = client.get(f"/api/runs/{run['id']}", headers=researcher).json()
    assert failed["status"] == "failed" and "not found" in failed["error"]
    session.rollback()
    assert session.scalars(select(PieSet)).all() == []
    session.rollback()


def test_a_run_whose_result_cannot_be_kept_fails_with_the_reason_and_the_worker_goes_on(
    client: TestClient, users: Users, session: Session, tmp_path: Path, engine: Engine,
    settings: Settings, tiny_store: Path,
) -> None:  # fmt: skip
    ds = split_dataset(session, tmp_path)
    store = copy_store(tiny_store, tmp_path)
    researcher = users.headers("rita", Role.researcher)
    # the analysis reports are kept in media/reports: a file in that folder's place
    reports = settings.resolved_media_dir / "reports"
    reports.parent.mkdir(parents=True, exist_ok=True)
    reports.write_text("taken")
    runs = [
        start(client, researcher, ds, source="store", params={"store_path": str(store)})["id"]
        for _ in range(3)
    ]
    assert worker(engine, settings).serve(drain=True) == 3  # it went on after each failure
    for run_id in runs:
        run = fetch(engine, run_id)
        assert run.status == RunStatus.failed and run.finished_at is not None
        assert run.error is not None and run.error.startswith("while finishing the run: "), (
            run.error
        )
        assert "FileExistsError" in run.error or "NotADirectoryError" in run.error, run.error
    assert session.scalars(select(PieSet)).all() == []
    session.rollback()
