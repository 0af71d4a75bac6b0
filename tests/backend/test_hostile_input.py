"""Hostile input: oversized bodies and files, traversal, malformed CSVs and pickles.

(CSV-injection-safe exports: tests/backend/stats; cross-site requests, security headers and
login rate limiting: test_security.py; traversal in label files: tests/ml/test_labels.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from backend.auth.models import Role
from backend.config import Settings
from backend.datasets.models import Dataset
from backend.db import make_sessionmaker
from backend.main import create_app
from backend.piesets import service as piesets_service
from backend.piesets.models import PieSet
from backend.runs.worker import Worker
from ml.data import labels as labels_module
from tests.conftest import Users
from tests.factories import make_dataset, plain_dataset_files, write_png


def count(session: Session, model: type) -> int:
    n = session.scalar(select(func.count()).select_from(model)) or 0
    session.rollback()
    return n


def committed_dataset(session: Session, root: Path, n: int) -> int:
    """A dataset, committed; its id (no ORM object stays behind in the session)."""
    ds_id = make_dataset(session, root, n).id
    session.commit()
    return ds_id


def api_import(
    client: TestClient, headers: dict[str, str], labels: Path, images: Path, name: str = "x"
):
    body = {"name": name, "format": "plain", "labels_files": [str(labels)], "image_dir": str(images),
            "classes": ["No Finding", "Effusion"]}  # fmt: skip
    return client.post("/api/datasets/import", json=body, headers=headers)


def test_request_bodies_over_the_limit_are_refused(settings: Settings, users: Users) -> None:
    app = create_app(settings.model_copy(update={"max_request_mb": 1}))
    with TestClient(app) as c:
        big = b"x" * (1024 * 1024 + 1)
        r = c.post("/api/auth/login", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "over 1,048,576 bytes" in r.json()["error"]

        def chunks():  # no Content-Length: counted while read
            for _ in range(3):
                yield b"y" * 600_000

        r = c.post(
            "/api/auth/login", content=chunks(), headers={"content-type": "application/json"}
        )
        assert r.status_code == 413


def test_an_oversized_pie_set_upload_is_refused_whole(
    client: TestClient,
    users: Users,
    session: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ds_id = committed_dataset(session, tmp_path, 20)
    monkeypatch.setattr(piesets_service, "MAX_CSV_BYTES", 1000)
    rows = "".join(f"img_{i:05d}.png,{i % 2},0.5\n" for i in range(20)) * 10
    r = client.post(
        "/api/piesets/import", headers=users.headers("rita", Role.researcher),
        data={"dataset_id": str(ds_id), "name": "big"},
        files={"file": ("big.csv", ("image,is_pie,score\n" + rows).encode(), "text/csv")},
    )  # fmt: skip
    assert r.status_code == 422 and "larger than" in r.json()["error"]
    assert count(session, PieSet) == 0


def test_label_files_that_are_huge_binary_or_escape_their_folder_are_refused(
    client: TestClient,
    users: Users,
    session: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    researcher = users.headers("rita", Role.researcher)
    files = plain_dataset_files(tmp_path, 10)
    monkeypatch.setattr(labels_module, "MAX_LABEL_BYTES", 100)
    r = api_import(client, researcher, files.labels, files.image_dir, "huge")
    assert r.status_code == 422 and "over the 100 a label file may have" in r.json()["error"]
    monkeypatch.undo()

    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"image,labels\n\xff\xfe\x00\x01garbage")
    r = api_import(client, researcher, binary, files.image_dir, "binary")
    assert r.status_code == 422 and "binary.csv: not UTF-8 text" in r.json()["error"]

    write_png(tmp_path / "secret.png")
    escape = tmp_path / "escape.csv"
    escape.write_text("image,labels\nimg_00000.png,No Finding\n../secret.png,Effusion\n")
    r = api_import(client, researcher, escape, files.image_dir, "escape")
    assert r.status_code == 422
    problems = r.json()["detail"]["problems"]
    assert problems == [{"file": "escape.csv", "line": 3, "field": "image",
                         "message": "'../secret.png' points outside the image folder"}]  # fmt: skip

    outside = api_import(client, researcher, Path("/etc/passwd"), files.image_dir, "etc")
    assert outside.status_code == 403, outside.text
    assert count(session, Dataset) == 0


def test_malformed_pie_set_csvs_name_the_problem(
    client: TestClient, users: Users, session: Session, tmp_path: Path
) -> None:
    ds_id = committed_dataset(session, tmp_path, 10)
    researcher = users.headers("rita", Role.researcher)
    cases = {
        b"\x89PNG\r\n\x1a\n\x00\x00binary": "not UTF-8 text",
        b"image,is_pie\nimg_00000.png,maybe\n": "is_pie",
        b"wrong,header\n1,2\n": "image",
        b'image,is_pie,score\n"unclosed,1,0.5\n': "",
    }
    for content, expected in cases.items():
        r = client.post(
            "/api/piesets/import", headers=researcher, data={"dataset_id": str(ds_id), "name": "bad"},
            files={"file": ("bad.csv", content, "text/csv")},
        )  # fmt: skip
        assert r.status_code == 422, (content, r.status_code, r.text)
        assert expected in r.text
    assert count(session, PieSet) == 0


def test_a_run_from_malformed_pickles_fails_with_the_reason(
    client: TestClient, users: Users, session: Session, tmp_path: Path, engine: Engine,
    settings: Settings,
) -> None:  # fmt: skip
    ds_id = committed_dataset(session, tmp_path, 10)
    pickles = tmp_path / "pickles"
    pickles.mkdir()
    for k in ("0", "0.9"):
        (pickles / f"nih-cxr-lt_resnet50_seed-0_prune-{k}.pkl").write_bytes(
            b"\x80\x04 not a pickle"
        )
    researcher = users.headers("rita", Role.researcher)
    run = client.post(
        "/api/runs", headers=researcher,
        json={"dataset_id": ds_id, "name": "ref", "source": "reference", "params": {"reference_dir": str(pickles)}},
    ).json()  # fmt: skip
    Worker(make_sessionmaker(engine), settings, say=lambda _l: None, poll_s=0.1).serve(drain=True)
    done = client.get(f"/api/runs/{run['id']}", headers=researcher).json()
    assert done["status"] == "failed"
    assert "cannot be read as a pickled DataFrame" in done["error"] or "pickle" in done["error"]
    assert count(session, PieSet) == 0
