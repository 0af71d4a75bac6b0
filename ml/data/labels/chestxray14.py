"""NIH ChestX-ray14's Data_Entry_2017.csv: Image Index, |-joined Finding Labels, Patient ID."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ml.data.labels.common import (
    NO_FINDING,
    LabelRecord,
    LabelTable,
    _check_header,
    _header,
    _labels_from_names,
    _Reader,
    _rows,
)

# ChestX-ray14's 14 findings plus "No Finding"; "Pleural_Thickening" is read as
# "Pleural Thickening" so that the names match NIH-CXR-LT's.
CHESTXRAY14_CLASSES: tuple[str, ...] = (
    "No Finding",
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural Thickening",
    "Hernia",
)
_CXR14_META = (
    "Follow-up #",
    "Patient Age",
    "Patient Gender",
    "View Position",
    "OriginalImage[Width",
    "Height]",
    "OriginalImagePixelSpacing[x",
    "y]",
)


def _read_chestxray14(files: Sequence[Path], splits: dict[str, str]) -> LabelTable:
    reader = _Reader("chestxray14", CHESTXRAY14_CLASSES)
    required = ("Image Index", "Finding Labels", "Patient ID")
    for path in files:
        if not _check_header(reader, path, _header(path), required):
            continue
        for line, row in _rows(path):
            ext_id = row["Image Index"]
            if not ext_id:
                reader.problem(path.name, line, "Image Index", "empty image id")
                continue
            raw = row["Finding Labels"]
            names = [n.strip().replace("_", " ") for n in raw.split("|") if n.strip()]
            if not names:
                reader.problem(path.name, line, "Finding Labels", "empty; use 'No Finding'")
                continue
            if NO_FINDING in names and len(names) > 1:
                reader.problem(
                    path.name,
                    line,
                    "Finding Labels",
                    f"'No Finding' together with findings: {raw!r}",
                )
                continue
            labels = _labels_from_names(reader, path.name, line, "Finding Labels", names)
            if labels is None:
                continue
            meta = {k: row[k] for k in _CXR14_META if row.get(k)}
            reader.add(
                LabelRecord(
                    ext_id,
                    ext_id,
                    labels,
                    row["Patient ID"] or None,
                    splits.get(ext_id),
                    meta,
                    path.name,
                    line,
                )
            )
    return reader.table()
