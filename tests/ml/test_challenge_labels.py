"""The CXR-LT 2023 and 2024 challenges' label files, on small files written in their layouts,
read by the label reader and imported as a dataset through the API (images opened and all)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from ml.data.labels import (
    CXR_LT_2023_CLASSES,
    MIMIC_CXR_LT_CLASSES,
    NIH_CXR_LT_CLASSES,
    NO_FINDING,
    read_labels,
    require_ok,
)
from tests.ml.test_labels import write_csv

# 40 class columns of a 2024 file: the 2023 classes with "Normal", then 14 more (names made up
# here: the reader takes a 2024 file's classes from its header)
CLASSES_2024 = [("Normal" if c == NO_FINDING else c) for c in CXR_LT_2023_CLASSES] + [
    f"Rare finding {i}" for i in range(1, 15)
]
ZERO_SHOT = [f"Unseen finding {i}" for i in range(1, 6)]


def labelled(rng: random.Random, classes: list[str]) -> dict[str, int]:
    chosen = set(rng.sample(classes, rng.randint(1, 3)))
    return {c: int(c in chosen) for c in classes}


def test_2023_files_have_the_26_classes_in_any_column_order(tmp_path: Path) -> None:
    assert len(CXR_LT_2023_CLASSES) == 26
    assert set(CXR_LT_2023_CLASSES) == set(MIMIC_CXR_LT_CLASSES) | set(NIH_CXR_LT_CLASSES) - {
        "Effusion"  # NIH's name for MIMIC's Pleural Effusion
    }
    rng = random.Random(1)
    columns = list(CXR_LT_2023_CLASSES)
    rng.shuffle(columns)
    written: dict[str, dict[str, int]] = {}
    files = []
    for split in ("train", "val", "test"):
        rows = []
        for i in range(4):
            dicom = f"{split}-d{i}"
            written[dicom] = labelled(rng, columns)
            fpath = f"files/p10/p{i}/s{i}/{dicom}.jpg"
            rows.append([dicom, f"{i}", f"s{i}", fpath, *(written[dicom][c] for c in columns)])
        header = ["dicom_id", "subject_id", "study_id", "fpath", *columns]
        files.append(write_csv(tmp_path / f"cxr-lt-2023_labels_{split}.csv", header, rows))
    table = require_ok(read_labels("cxr-lt-2023", files))
    assert table.classes == CXR_LT_2023_CLASSES and len(table.records) == 12
    for r in table.records:
        assert dict(zip(table.classes, r.labels, strict=True)) == written[r.external_id]
        assert r.path == f"files/p10/p{r.patient_id}/s{r.patient_id}/{r.external_id}.jpg"
        assert r.split == r.external_id.split("-")[0] and r.meta == {"study_id": f"s{r.patient_id}"}


def test_2023_problems_are_named(tmp_path: Path) -> None:
    columns = [c for c in CXR_LT_2023_CLASSES if c != "Hernia"] + ["Lung Cancer"]
    f = write_csv(
        tmp_path / "a_labels_train.csv",
        ["dicom_id", "subject_id", *columns],
        [["d", "1", *[0] * 26]],
    )
    problems = read_labels("cxr-lt-2023", [f]).problems
    assert len(problems) == 1 and "unknown: Lung Cancer; missing: Hernia" in problems[0].message
    g = write_csv(
        tmp_path / "b_labels_train.csv",
        ["dicom_id", "subject_id", *CXR_LT_2023_CLASSES],
        [["d", "1", 2, *[0] * 25]],
    )
    bad = read_labels("cxr-lt-2023", [g]).problems
    assert [(p.line, p.field) for p in bad] == [(2, CXR_LT_2023_CLASSES[0])] and "0 or 1" in bad[
        0
    ].message
    h = write_csv(
        tmp_path / "c_labels_train.csv", ["fpath", *CXR_LT_2023_CLASSES], [["x.jpg", *[0] * 26]]
    )
    assert (
        "missing column(s) 'dicom_id', 'subject_id'"
        in read_labels("cxr-lt-2023", [h]).problems[0].message
    )


def test_2024_reads_normal_as_no_finding_with_40_or_45_classes(tmp_path: Path) -> None:
    rng = random.Random(2)
    for classes in (CLASSES_2024, CLASSES_2024 + ZERO_SHOT):
        rows, written = [], {}
        for i, split in enumerate(("train", "train", "validation", "test", "test")):
            fpath = f"files/p1{i}/p{i}/s{i}/img{i}.jpg"
            written[fpath] = labelled(rng, classes)
            rows.append([fpath, str(i), split, *(written[fpath][c] for c in classes)])
        f = write_csv(
            tmp_path / f"train_{len(classes)}.csv", ["fpath", "subject_id", "split", *classes], rows
        )
        table = require_ok(read_labels("cxr-lt-2024", [f]))
        assert len(table.classes) == len(classes) and "Normal" not in table.classes
        assert table.classes.index(NO_FINDING) == classes.index("Normal")
        assert [r.split for r in table.records] == ["train", "train", "val", "test", "test"]
        for r in table.records:  # no dicom_id column: the path is the image's id
            assert r.external_id == r.path
            shown = dict(zip(table.classes, r.labels, strict=True))
            assert shown[NO_FINDING] == written[r.path]["Normal"]
            assert all(shown[c] == written[r.path][c] for c in classes if c != "Normal")


def test_2024_problems_are_named(tmp_path: Path) -> None:
    f = write_csv(tmp_path / "a.csv", ["fpath", *CLASSES_2024[:-1]], [["x.jpg", *[0] * 39]])
    assert (
        "40 class columns (tasks 1 and 2) or 45"
        in read_labels("cxr-lt-2024", [f]).problems[0].message
    )
    renamed = [NO_FINDING if c == "Normal" else c for c in CLASSES_2024]
    g = write_csv(tmp_path / "b.csv", ["fpath", *renamed], [["x.jpg", *[0] * 40]])
    assert "call it 'Normal'" in read_labels("cxr-lt-2024", [g]).problems[0].message
    h = write_csv(tmp_path / "c.csv", ["fpath", *CLASSES_2024], [["x.jpg", *[0] * 40]])
    other = [*CLASSES_2024[:-1], "Something else"]
    i = write_csv(tmp_path / "d.csv", ["fpath", *other], [["y.jpg", *[0] * 40]])
    problems = read_labels("cxr-lt-2024", [h, i]).problems
    assert [p.source for p in problems] == [
        "d.csv"
    ] and "unknown: Something else; missing: Rare finding 14" in problems[0].message
    j = write_csv(
        tmp_path / "e.csv", ["fpath", "split", *CLASSES_2024], [["x.jpg", "holdout", *[0] * 40]]
    )
    assert "unknown split 'holdout'" in read_labels("cxr-lt-2024", [j]).problems[0].message


def test_a_2024_dataset_imports_through_the_api(
    client: TestClient, researcher_headers: dict[str, str], tmp_path: Path
) -> None:
    """The importer opens every image at its fpath; the dataset has the file's 40 classes."""
    rng = np.random.default_rng(3)
    rows = []
    for i, split in enumerate(["train"] * 6 + ["val"] * 2 + ["test"] * 4):
        fpath = f"files/p1{i % 3}/p{i}/s{i}/img{i}.png"
        (tmp_path / "images" / Path(fpath).parent).mkdir(parents=True, exist_ok=True)
        PILImage.fromarray(rng.integers(0, 255, (48, 48), dtype=np.uint8)).save(
            tmp_path / "images" / fpath
        )
        labels = [int(c == CLASSES_2024[i % 40]) for c in CLASSES_2024]
        rows.append([fpath, f"{i}", split, *labels])
    f = write_csv(
        tmp_path / "cxr-lt-2024.csv", ["fpath", "subject_id", "split", *CLASSES_2024], rows
    )
    body = {
        "name": "cxr-lt-2024",
        "format": "cxr-lt-2024",
        "labels_files": [str(f)],
        "image_dir": str(tmp_path / "images"),
    }
    r = client.post("/api/datasets/import", json=body, headers=researcher_headers)
    assert r.status_code == 201, r.text
    dataset = r.json()
    assert dataset["image_count"] == 12 and dataset["label_format"] == "cxr-lt-2024"
    assert (
        len(dataset["classes"]) == 40
        and NO_FINDING in dataset["classes"]
        and "Normal" not in dataset["classes"]
    )
    (tmp_path / "images" / "files/p10/p0/s0/img0.png").write_bytes(b"not an image")
    again = client.post(
        "/api/datasets/import", json={**body, "name": "broken"}, headers=researcher_headers
    )
    assert again.status_code == 422 and "img0.png" in again.text
