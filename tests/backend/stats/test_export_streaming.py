"""Exports stream: memory stays flat as a study grows from 60 to 100 readers."""

from __future__ import annotations

import csv
import gc
import io
import tracemalloc
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from backend.auth.models import Role, User
from backend.datasets import service as datasets_service
from backend.reading.models import Answer
from backend.stats import export, repository
from backend.studies import service as studies_service
from backend.studies.models import Assignment, Reader, Study
from backend.studies.schemas import StudyCreate
from backend.timeutil import utcnow
from tests.factories import make_pie_set, make_user

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database


def big_dataset(session: Session, root: Path, n: int) -> int:
    images = root / "imgs"
    images.mkdir()
    png = io.BytesIO()
    PILImage.new("L", (8, 8), 90).save(png, format="PNG")  # the import opens every image
    with (root / "labels.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "labels"])
        for i in range(n):
            (images / f"i{i:05d}.png").write_bytes(png.getvalue())
            w.writerow([f"i{i:05d}.png", "A" if i % 3 else "B"])
    ds = datasets_service.import_dataset(
        session, name="big", fmt="plain", labels_files=[root / "labels.csv"], image_dir=images
    )
    return ds.id


def study_with_readers(session: Session, owner_id: int, pie_set_id: int, readers: int) -> Study:
    user = session.get(User, owner_id)
    assert user is not None
    study = studies_service.create_study(
        session,
        user,
        StudyCreate(
            name=f"{readers} readers", pie_set_id=pie_set_id, planned_readers=readers, seed=readers
        ),
    )
    studies_service.enroll_readers(session, study.id, user, [f"reader {i}" for i in range(readers)])
    now = utcnow()
    ids = session.scalars(
        select(Assignment.id).join(Reader).where(Reader.study_id == study.id)
    ).all()
    session.execute(
        insert(Answer),
        [
            {
                "assignment_id": a,
                "agree": True,
                "quality": 3,
                "difficulty": 2,
                "agree_at": now,
                "quality_at": now,
                "difficulty_at": now,
                "active_seconds": 12.5,
                "revision_count": 1,
                "first_answered_at": now,
                "updated_at": now,
                "completed_at": now,
            }
            for a in ids
        ],
    )
    session.commit()
    return study


def peak_while_exporting(session: Session, study: Study) -> tuple[int, int]:
    gc.collect()
    tracemalloc.start()
    lines = 0
    for chunk in export.long_csv(study, repository.response_rows(session, study)):
        lines += chunk.count("\n")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    session.rollback()
    return lines, peak


def test_export_memory_does_not_grow_with_the_study(session: Session, tmp_path: Path) -> None:
    dataset_id = big_dataset(session, tmp_path, 4000)
    from backend.datasets.models import Dataset

    ds = session.get(Dataset, dataset_id)
    assert ds is not None
    pie_set = make_pie_set(session, ds, n_pies=2000)
    owner = make_user(session, "exporter", Role.coordinator)
    session.commit()
    # both studies span several 1,000-row fetch chunks, so only growth with the study would show
    small = study_with_readers(session, owner.id, pie_set.id, 60)
    big = study_with_readers(session, owner.id, pie_set.id, 100)
    peak_while_exporting(session, small)  # warm caches (compiled SQL, imports)
    small_lines, small_peak = peak_while_exporting(session, small)
    big_lines, big_peak = peak_while_exporting(session, big)
    assert (small_lines, big_lines) == (1 + 60 * 40 * 3, 1 + 100 * 40 * 3)
    # 1.7x the rows; memory bounded by the chunk size, not by the study
    assert big_peak < 1.15 * small_peak, (small_peak, big_peak)
    print(f"export peak: 60 readers {small_peak / 1e6:.2f} MB, 100 readers {big_peak / 1e6:.2f} MB")


def test_http_export_arrives_in_chunks(
    client: TestClient, session: Session, tmp_path: Path, coordinator_headers: dict[str, str]
) -> None:
    dataset_id = big_dataset(session, tmp_path, 1200)
    from backend.auth import repository as auth_repo
    from backend.datasets.models import Dataset

    ds = session.get(Dataset, dataset_id)
    assert ds is not None
    pie_set = make_pie_set(session, ds, n_pies=600)
    session.commit()
    coordinator = auth_repo.get_user_by_username(session, "coordinator")
    assert coordinator is not None
    study = study_with_readers(session, coordinator.id, pie_set.id, 30)
    with client.stream(
        "GET", f"/api/studies/{study.id}/export?format=long", headers=coordinator_headers
    ) as r:
        assert r.status_code == 200
        chunks = list(r.iter_text())
    assert len(chunks) > 3
    assert "".join(chunks).count("\n") == 1 + 30 * 40 * 3
