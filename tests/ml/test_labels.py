from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ml.data.labels import (
    CHESTXRAY14_CLASSES,
    MIMIC_CXR_LT_CLASSES,
    NIH_CXR_LT_CLASSES,
    LabelFormatError,
    missing_images,
    patient_leakage,
    read_labels,
    require_ok,
    resolve_image,
)


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def nih_lt_file(tmp: Path, split: str, rows: list[tuple[str, str, set[str]]]) -> Path:
    header = ["id", "subj_id", *NIH_CXR_LT_CLASSES]
    body = [[i, s, *(int(c in labels) for c in NIH_CXR_LT_CLASSES)] for i, s, labels in rows]
    return write_csv(tmp / f"miccai2023_nih-cxr-lt_labels_{split}.csv", header, body)


def test_nih_cxr_lt_reads_split_from_file_name(tmp_path: Path) -> None:
    train = nih_lt_file(
        tmp_path, "train", [("a.png", "1", {"Effusion"}), ("b.png", "2", {"No Finding"})]
    )
    test = nih_lt_file(tmp_path, "test", [("c.png", "3", {"Hernia", "Mass"})])
    table = require_ok(read_labels("nih-cxr-lt", [train, test]))
    assert table.classes == NIH_CXR_LT_CLASSES
    assert [r.split for r in table.records] == ["train", "train", "test"]
    c = table.records[2]
    assert {table.classes[i] for i, v in enumerate(c.labels) if v} == {"Hernia", "Mass"}
    assert table.labels_matrix().shape == (3, 20)


def test_mimic_cxr_lt(tmp_path: Path) -> None:
    header = ["path", "subject_id", "study_id", "dicom_id", *MIMIC_CXR_LT_CLASSES]
    rows = [
        [
            "files/p10/p1/s1/d1.jpg",
            "1",
            "s1",
            "d1",
            *(int(c == "Fracture") for c in MIMIC_CXR_LT_CLASSES),
        ],
        [
            "files/p10/p2/s2/d2.jpg",
            "2",
            "s2",
            "d2",
            *(int(c == "No Finding") for c in MIMIC_CXR_LT_CLASSES),
        ],
    ]
    f = write_csv(tmp_path / "miccai2023_mimic-cxr-lt_labels_val.csv", header, rows)
    table = require_ok(read_labels("mimic-cxr-lt", [f]))
    assert [r.external_id for r in table.records] == ["d1", "d2"]
    assert table.records[0].path == "files/p10/p1/s1/d1.jpg"
    assert table.records[0].split == "val"
    assert table.records[0].labels[MIMIC_CXR_LT_CLASSES.index("Fracture")] == 1


def test_chestxray14_normalizes_pleural_thickening(tmp_path: Path) -> None:
    f = write_csv(
        tmp_path / "Data_Entry_2017.csv",
        ["Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age"],
        [["x.png", "Pleural_Thickening|Mass", 0, 7, 61], ["y.png", "No Finding", 0, 8, 40]],
    )
    table = require_ok(read_labels("chestxray14", [f]))
    x = table.records[0]
    assert x.labels[CHESTXRAY14_CLASSES.index("Pleural Thickening")] == 1
    assert x.labels[CHESTXRAY14_CLASSES.index("Mass")] == 1
    assert x.patient_id == "7"
    assert x.meta["Patient Age"] == "61"


def test_plain_derives_classes_by_frequency(tmp_path: Path) -> None:
    f = write_csv(tmp_path / "l.csv", ["image", "labels"], [["a", "B|A"], ["b", "A"], ["c", ""]])
    table = require_ok(read_labels("plain", [f]))
    assert table.classes == ("A", "B")
    assert [r.labels for r in table.records] == [(1, 1), (1, 0), (0, 0)]


def test_problems_are_collected_with_file_and_line(tmp_path: Path) -> None:
    header = ["id", "subj_id", *NIH_CXR_LT_CLASSES]
    good = [0] * 20
    rows = [
        ["a.png", "1", *good],
        ["a.png", "1", *good],  # duplicate
        ["b.png", "2", 2, *good[1:]],  # not 0/1
        ["c.png", "3", "yes", *good[1:]],
    ]
    f = write_csv(tmp_path / "miccai2023_nih-cxr-lt_labels_test.csv", header, rows)
    table = read_labels("nih-cxr-lt", [f])
    found = {(p.line, p.field) for p in table.problems}
    assert (3, "id") in found
    assert (4, "No Finding") in found
    assert (5, "No Finding") in found
    with pytest.raises(LabelFormatError, match="3 problem"):
        require_ok(table)


def test_unknown_class_column_and_unknown_label(tmp_path: Path) -> None:
    header = ["id", "subj_id", *NIH_CXR_LT_CLASSES, "Dragon Scale"]
    f = write_csv(
        tmp_path / "miccai2023_nih-cxr-lt_labels_test.csv", header, [["a", "1", *([0] * 21)]]
    )
    problems = read_labels("nih-cxr-lt", [f]).problems
    assert any("unknown class column 'Dragon Scale'" in p.message for p in problems)
    g = write_csv(
        tmp_path / "d.csv",
        ["Image Index", "Finding Labels", "Patient ID"],
        [["a", "Cardiomegaly|Dragon", "1"]],
    )
    problems = read_labels("chestxray14", [g]).problems
    assert len(problems) == 1 and "unknown class 'Dragon'" in problems[0].message
    h = write_csv(tmp_path / "p.csv", ["image", "labels"], [["a", "X|Y"]])
    problems = read_labels("plain", [h], classes=["X"]).problems
    assert "unknown class 'Y'" in problems[0].message


def test_missing_columns_named(tmp_path: Path) -> None:
    f = write_csv(tmp_path / "d.csv", ["Image", "Labels"], [["a", "b"]])
    problems = read_labels("chestxray14", [f]).problems
    assert problems[0].line == 1 and "Image Index" in problems[0].message


def test_split_file_mismatches(tmp_path: Path) -> None:
    f = write_csv(tmp_path / "l.csv", ["image", "labels"], [["a", "X"], ["b", "X"]])
    s = write_csv(
        tmp_path / "s.csv", ["image", "split"], [["a", "train"], ["c", "test"], ["a", "test"]]
    )
    messages = [p.message for p in read_labels("plain", [f], split_file=s).problems]
    assert any("'a' listed twice" in m for m in messages)
    assert any("'b' is not in s.csv" in m for m in messages)
    assert any("'c' has no labels row" in m for m in messages)


def test_patient_leakage(tmp_path: Path) -> None:
    f = write_csv(
        tmp_path / "l.csv",
        ["image", "labels", "patient", "split"],
        [["a", "X", "p1", "train"], ["b", "X", "p1", "test"], ["c", "X", "p2", "test"]],
    )
    table = require_ok(read_labels("plain", [f]))
    leaks = patient_leakage(table.records)
    assert len(leaks) == 1 and "patient 'p1'" in leaks[0].message


def test_missing_and_escaping_images(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(b"x")
    (tmp_path / "secret.png").write_bytes(b"x")
    f = write_csv(
        tmp_path / "l.csv",
        ["image", "labels"],
        [["a.png", "X"], ["b.png", "X"], ["../secret.png", "X"]],
    )
    table = require_ok(read_labels("plain", [f]))
    problems = missing_images(table.records, tmp_path / "imgs")
    assert [p.line for p in problems] == [3, 4]
    assert "not found" in problems[0].message
    assert "outside the image folder" in problems[1].message
    assert resolve_image(tmp_path / "imgs", "/etc/passwd") is None


def test_bad_arguments_raise(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_labels("plain", [tmp_path / "none.csv"])
    with pytest.raises(ValueError, match="unknown label format"):
        read_labels("xml", [tmp_path / "none.csv"])  # type: ignore[arg-type]
