from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from backend.cli import app as cli
from backend.config import Settings
from backend.datasets.models import Dataset, Image
from tests.factories import plain_dataset_files

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database


def counts(session: Session) -> tuple[int, int]:
    session.expire_all()
    out = (
        session.scalar(select(func.count()).select_from(Dataset)) or 0,
        session.scalar(select(func.count()).select_from(Image)) or 0,
    )
    session.rollback()  # end the read: SQLite transactions hold the write lock (BEGIN IMMEDIATE)
    return out


def test_api_import_plain(
    client: TestClient, researcher_headers: dict[str, str], tmp_path: Path, session: Session
) -> None:
    files = plain_dataset_files(tmp_path, 12, with_split=True)
    r = client.post(
        "/api/datasets/import",
        json={
            "name": "plain",
            "format": "plain",
            "labels_files": [str(files.labels)],
            "image_dir": str(files.image_dir),
        },
        headers=researcher_headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["image_count"] == 12
    assert body["provenance"]["labels_files"][0]["sha256"]
    images = client.get(
        f"/api/datasets/{body['id']}/images?limit=5", headers=researcher_headers
    ).json()
    assert images["total"] == 12 and len(images["items"]) == 5
    assert set(images["items"][0]) >= {"external_id", "labels", "patient_id", "split"}
    assert counts(session) == (1, 12)
    # the same name again is a conflict, and nothing more is written
    again = client.post(
        "/api/datasets/import",
        json={
            "name": "plain",
            "format": "plain",
            "labels_files": [str(files.labels)],
            "image_dir": str(files.image_dir),
        },
        headers=researcher_headers,
    )
    assert again.status_code == 409
    assert counts(session) == (1, 12)


def test_import_rejects_and_writes_nothing(
    client: TestClient, researcher_headers: dict[str, str], tmp_path: Path, session: Session
) -> None:
    files = plain_dataset_files(tmp_path, 30)
    (files.image_dir / files.ids[4]).unlink()
    lines = files.labels.read_text().splitlines()
    lines[10] = lines[10].split(",")[0] + ",Dragon"  # unknown class
    lines.append(lines[3])  # duplicate id
    files.labels.write_text("\n".join(lines) + "\n")
    r = client.post(
        "/api/datasets/import",
        json={
            "name": "bad",
            "format": "plain",
            "labels_files": [str(files.labels)],
            "image_dir": str(files.image_dir),
            "classes": ["No Finding", "Effusion", "Atelectasis", "Hernia"],
        },
        headers=researcher_headers,
    )
    assert r.status_code == 422
    body = r.json()
    assert "nothing was imported" in body["error"]
    problems = body["detail"]["problems"]
    assert body["detail"]["total"] == 3
    by_field = {(p["field"], p["line"]) for p in problems}
    assert ("labels", 11) in by_field
    assert ("id", 32) in by_field
    assert ("image", 6) in by_field
    assert counts(session) == (0, 0)


def test_api_import_paths_must_lie_under_import_roots(
    client: TestClient, researcher_headers: dict[str, str]
) -> None:
    r = client.post(
        "/api/datasets/import",
        json={"name": "x", "format": "plain", "labels_files": ["/etc/passwd"], "image_dir": "/etc"},
        headers=researcher_headers,
    )
    assert r.status_code == 403
    assert "PIESTUDY_IMPORT_ROOTS" in r.json()["error"]


def test_api_import_unknown_format_is_422(
    client: TestClient, researcher_headers: dict[str, str], tmp_path: Path
) -> None:
    r = client.post(
        "/api/datasets/import",
        json={
            "name": "x",
            "format": "dicom",
            "labels_files": [str(tmp_path)],
            "image_dir": str(tmp_path),
        },
        headers=researcher_headers,
    )
    assert r.status_code == 422
    assert r.json()["error"].startswith("invalid format")


def test_real_nih_mini_import(
    client: TestClient, researcher_headers: dict[str, str], shared_data: Path
) -> None:
    mini = shared_data / "nih-cxr14-mini"
    r = client.post(
        "/api/datasets/import",
        json={
            "name": "nih-mini",
            "format": "chestxray14",
            "labels_files": [str(mini / "Data_Entry_2017_subset.csv")],
            "image_dir": str(mini / "images"),
            "split_file": str(mini / "split.csv"),
        },
        headers=researcher_headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["image_count"] == 1000
    assert body["provenance"]["splits"] == {"test": 210, "train": 592, "val": 198}
    counts = body["provenance"]["class_counts"]
    # the label counts of shared/data/README.md
    assert counts["No Finding"] == 499 and counts["Effusion"] == 170 and counts["Hernia"] == 9
    assert counts["Pleural Thickening"] == 29
    test_images = client.get(
        f"/api/datasets/{body['id']}/images?split=test&limit=1000", headers=researcher_headers
    ).json()
    assert test_images["total"] == len(test_images["items"]) == 210
    assert {i["split"] for i in test_images["items"]} == {"test"}


def test_real_nih_original_split_leaks_patients(
    client: TestClient, researcher_headers: dict[str, str], shared_data: Path, session: Session
) -> None:
    mini = shared_data / "nih-cxr14-mini"
    r = client.post(
        "/api/datasets/import",
        json={
            "name": "nih-leaky",
            "format": "chestxray14",
            "labels_files": [str(mini / "Data_Entry_2017_subset.csv")],
            "image_dir": str(mini / "images"),
            "split_file": str(mini / "split-original.csv"),
        },
        headers=researcher_headers,
    )
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail["total"] == 30  # 30 of 264 patients cross parts
    assert all(p["field"] == "patient" for p in detail["problems"])
    assert counts(session) == (0, 0)


def test_real_labels_without_images_are_rejected(
    client: TestClient, researcher_headers: dict[str, str], shared_data: Path, tmp_path: Path
) -> None:
    # the 40k-row label file, against a folder holding only the 1,000 mini images
    images = shared_data / "nih-cxr14-mini" / "images"
    r = client.post(
        "/api/datasets/import",
        json={
            "name": "nih-40k",
            "format": "chestxray14",
            "labels_files": [str(shared_data / "nih-cxr14-labels-40k.csv")],
            "image_dir": str(images),
        },
        headers=researcher_headers,
    )
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail["total"] >= 39_000
    assert len(detail["problems"]) == 20
    assert "not found" in detail["problems"][0]["message"]


def test_cli_import_fullres(env_settings: Settings, shared_data: Path, tmp_path: Path) -> None:
    full = shared_data / "nih-cxr14-fullres"
    result = CliRunner().invoke(
        cli,
        [
            "dataset",
            "import",
            "--name",
            "full",
            "--format",
            "chestxray14",
            "--labels",
            str(full / "labels.csv"),
            "--images",
            str(full),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 images" in result.output


def test_cli_import_reports_problems_and_exits_2(env_settings: Settings, tmp_path: Path) -> None:
    files = plain_dataset_files(tmp_path, 5)
    shutil.rmtree(files.image_dir)
    files.image_dir.mkdir()
    result = CliRunner().invoke(
        cli,
        [
            "dataset",
            "import",
            "--name",
            "x",
            "--format",
            "plain",
            "--labels",
            str(files.labels),
            "--images",
            str(files.image_dir),
        ],
    )
    assert result.exit_code == 2
    assert "5 problem(s)" in result.output
    assert "not found" in result.output


def test_nih_cxr_lt_files_with_patient_leak_across_train_and_test(
    client: TestClient, researcher_headers: dict[str, str], tmp_path: Path, session: Session
) -> None:
    from tests.factories import write_png
    from tests.ml.test_labels import nih_lt_file

    for name in ("a.png", "b.png", "c.png"):
        write_png(tmp_path / "imgs" / name)
    train = nih_lt_file(
        tmp_path, "train", [("a.png", "p1", {"Effusion"}), ("b.png", "p2", {"No Finding"})]
    )
    test = nih_lt_file(tmp_path, "test", [("c.png", "p1", {"Hernia"})])
    body = {
        "name": "lt",
        "format": "nih-cxr-lt",
        "labels_files": [str(train), str(test)],
        "image_dir": str(tmp_path / "imgs"),
    }
    r = client.post("/api/datasets/import", json=body, headers=researcher_headers)
    assert r.status_code == 422
    assert (
        "patient 'p1' appears in more than one split (test: c.png, train: a.png)"
        in r.json()["error"]
    )
    assert counts(session) == (0, 0)
    test.write_text(test.read_text().replace(",p1,", ",p3,"))
    r = client.post("/api/datasets/import", json=body, headers=researcher_headers)
    assert r.status_code == 201, r.text
    assert r.json()["provenance"]["splits"] == {"test": 1, "train": 2}
    assert r.json()["classes"][0] == "No Finding" and len(r.json()["classes"]) == 20
