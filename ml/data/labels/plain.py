"""Your own CSV: image,labels with |-joined labels, optional patient and split."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ml.data.labels.common import (
    LabelProblem,
    LabelRecord,
    LabelTable,
    _header,
    _labels_from_names,
    _Reader,
    _rows,
    normalize_split,
)


def _read_plain(
    files: Sequence[Path], splits: dict[str, str], classes: Sequence[str] | None
) -> LabelTable:
    parsed: list[tuple[Path, int, dict[str, str], list[str]]] = []
    header_problems: list[LabelProblem] = []
    for path in files:
        header = _header(path)
        missing = [c for c in ("image", "labels") if c not in header]
        if missing:
            header_problems.append(
                LabelProblem(
                    path.name,
                    1,
                    "header",
                    "a plain labels file needs the columns image,labels (optional: patient, split)",
                )
            )
            continue
        for line, row in _rows(path):
            names = [n.strip() for n in row["labels"].split("|") if n.strip()]
            parsed.append((path, line, row, names))
    if classes is None:
        # Most frequent first, then by name: a stable order that puts the head classes first.
        counts = Counter(n for *_, names in parsed for n in names)
        classes = sorted(counts, key=lambda c: (-counts[c], c))
    reader = _Reader("plain", classes)
    reader.problems.extend(header_problems)
    for path, line, row, names in parsed:
        ext_id = row["image"]
        if not ext_id:
            reader.problem(path.name, line, "image", "empty image id")
            continue
        labels = _labels_from_names(reader, path.name, line, "labels", names)
        if labels is None:
            continue
        split = splits.get(ext_id)
        if row.get("split"):
            split = normalize_split(row["split"])
            if split is None:
                reader.problem(
                    path.name,
                    line,
                    "split",
                    f"unknown split {row['split']!r}; use train, val or test",
                )
                continue
        reader.add(
            LabelRecord(
                ext_id, ext_id, labels, row.get("patient") or None, split, {}, path.name, line
            )
        )
    return reader.table()
