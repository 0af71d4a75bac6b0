"""NIH-CXR-LT and MIMIC-CXR-LT (MICCAI 2023): one CSV per split, a 0/1 column per class."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from ml.data.labels.common import (
    LabelRecord,
    LabelTable,
    _check_header,
    _class_columns,
    _header,
    _Reader,
    _rows,
    split_from_file_name,
)

NIH_CXR_LT_CLASSES: tuple[str, ...] = (
    "No Finding",
    "Infiltration",
    "Effusion",
    "Atelectasis",
    "Nodule",
    "Mass",
    "Consolidation",
    "Pneumothorax",
    "Pleural Thickening",
    "Cardiomegaly",
    "Emphysema",
    "Edema",
    "Fibrosis",
    "Subcutaneous Emphysema",
    "Pneumonia",
    "Tortuous Aorta",
    "Calcification of the Aorta",
    "Pneumoperitoneum",
    "Hernia",
    "Pneumomediastinum",
)
MIMIC_CXR_LT_CLASSES: tuple[str, ...] = (
    "Support Devices",
    "Lung Opacity",
    "Cardiomegaly",
    "Pleural Effusion",
    "Atelectasis",
    "Pneumonia",
    "Edema",
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Consolidation",
    "Pneumothorax",
    "Fracture",
    "Calcification of the Aorta",
    "Tortuous Aorta",
    "Subcutaneous Emphysema",
    "Lung Lesion",
    "Pneumomediastinum",
    "Pneumoperitoneum",
    "Pleural Other",
)


def _read_lt(
    fmt: Literal["nih-cxr-lt", "mimic-cxr-lt"], files: Sequence[Path], splits: dict[str, str]
) -> LabelTable:
    id_cols: tuple[str, ...]
    if fmt == "nih-cxr-lt":
        classes, id_cols, required = NIH_CXR_LT_CLASSES, ("id", "subj_id"), ("id", "subj_id")
    else:
        classes = MIMIC_CXR_LT_CLASSES
        id_cols = ("path", "subject_id", "study_id", "dicom_id")
        required = ("path", "subject_id")
    reader = _Reader(fmt, classes)
    for path in files:
        header = _header(path)
        if not _check_header(reader, path, header, required):
            continue
        if not _class_columns(reader, path, header, id_cols):
            continue
        file_split = split_from_file_name(path)
        for line, row in _rows(path):
            labels = reader.binary_columns(path.name, line, row, classes)
            if fmt == "nih-cxr-lt":
                ext_id, rel, patient = row["id"], row["id"], row["subj_id"]
                meta: dict[str, str] = {}
            else:
                rel = row["path"]
                ext_id = row.get("dicom_id") or rel
                patient = row["subject_id"]
                meta = {k: row[k] for k in ("study_id",) if row.get(k)}
            if not ext_id:
                reader.problem(path.name, line, required[0], "empty image id")
                continue
            if labels is None:
                continue
            split = splits.get(ext_id, file_split)
            reader.add(
                LabelRecord(ext_id, rel, labels, patient or None, split, meta, path.name, line)
            )
    return reader.table()
