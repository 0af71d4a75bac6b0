"""The CXR-LT challenges' label files (MIMIC-CXR images): one CSV per split, a 0/1 column per class.

- ``cxr-lt-2023`` (MICCAI 2023, 26 classes): ``dicom_id``, ``subject_id``, optional ``study_id``,
  ``fpath`` (the image's relative path; ``path`` in some copies) and the 26 class columns, which
  are MIMIC-CXR-LT's 19 and NIH-CXR-LT's 7 that MIMIC lacks.
- ``cxr-lt-2024`` (MICCAI 2024): ``fpath`` and 40 class columns (tasks 1 and 2) or 45 (with
  task 3's five zero-shot findings), any others of ``dicom_id``, ``subject_id``, ``study_id``;
  the 2024 files say "Normal" where the others say "No Finding", and are read as "No Finding".
  Its classes are the file's own, in the file's order: the first file sets them, and every other
  file must have the same.

The split of an image: a split file's where one is given, else the row's ``split`` column
(train/val/test) where the file has one, else the file name's (``..._labels_train.csv``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from ml.data.labels.common import (
    NO_FINDING,
    LabelRecord,
    LabelTable,
    _check_header,
    _header,
    _Reader,
    _rows,
    normalize_split,
    split_from_file_name,
)
from ml.data.labels.longtailed import MIMIC_CXR_LT_CLASSES

CXR_LT_2023_CLASSES: tuple[str, ...] = (
    *MIMIC_CXR_LT_CLASSES,
    "Emphysema", "Fibrosis", "Hernia", "Infiltration", "Mass", "Nodule", "Pleural Thickening",
)  # fmt: skip
CXR_LT_2024_CLASS_COUNTS = (40, 45)
NORMAL = "Normal"  # CXR-LT 2024's name for "No Finding"
_METADATA = ("dicom_id", "subject_id", "study_id", "fpath", "path", "split")


def _class_names(header: Sequence[str]) -> list[str]:
    """The class columns of a file: every column but the known metadata ones."""
    return [c for c in header if c not in _METADATA]


def _read_challenge(
    fmt: Literal["cxr-lt-2023", "cxr-lt-2024"], files: Sequence[Path], splits: dict[str, str]
) -> LabelTable:
    first = _header(files[0])
    columns = _class_names(first)
    if fmt == "cxr-lt-2023":
        classes: tuple[str, ...] = CXR_LT_2023_CLASSES
        required: tuple[str, ...] = ("dicom_id", "subject_id")
    else:
        classes = tuple(NO_FINDING if c == NORMAL else c for c in columns)
        required = ("fpath",)
    reader = _Reader(fmt, classes)
    if fmt == "cxr-lt-2024" and len(columns) not in CXR_LT_2024_CLASS_COUNTS:
        reader.problem(
            files[0].name, 1, "header",
            f"a CXR-LT 2024 file has 40 class columns (tasks 1 and 2) or 45 (with task 3's), "
            f"this one has {len(columns)}: {', '.join(columns)}",
        )  # fmt: skip
        return reader.table()
    if fmt == "cxr-lt-2024" and NO_FINDING in columns:
        reader.problem(files[0].name, 1, NO_FINDING, f"CXR-LT 2024 files call it {NORMAL!r}")
        return reader.table()
    for path in files:
        header = _header(path)
        if not _check_header(reader, path, header, required):
            continue
        mine = _class_names(header)
        expected = list(CXR_LT_2023_CLASSES) if fmt == "cxr-lt-2023" else columns
        if sorted(mine) != sorted(expected):
            unknown = sorted(set(mine) - set(expected))
            missing = sorted(set(expected) - set(mine))
            reader.problem(
                path.name, 1, "header",
                f"the {fmt} class columns differ"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                + (f"; missing: {', '.join(missing)}" if missing else ""),
            )  # fmt: skip
            continue
        file_split = split_from_file_name(path)
        for line, row in _rows(path):
            labels = reader.binary_columns(path.name, line, row, expected)
            rel = row.get("fpath") or row.get("path") or row.get("dicom_id", "")
            ext_id = row.get("dicom_id") or rel
            if not ext_id:
                reader.problem(path.name, line, required[0], "empty image id")
                continue
            if labels is None:
                continue
            split = splits.get(ext_id)  # a split file first, then the row's, then the file name
            if split is None and row.get("split"):
                split = normalize_split(row["split"])
                if split is None:
                    reader.problem(path.name, line, "split", f"unknown split {row['split']!r}")
                    continue
            split = split or file_split
            meta = {k: row[k] for k in ("study_id",) if row.get(k)}
            reader.add(
                LabelRecord(
                    ext_id, rel, labels, row.get("subject_id") or None, split, meta, path.name, line
                )
            )
    return reader.table()
