"""What every label format shares: records, problems, the table, and one read's bookkeeping."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

LabelFormat = Literal[
    "nih-cxr-lt", "mimic-cxr-lt", "cxr-lt-2023", "cxr-lt-2024", "chestxray14", "plain"
]
LABEL_FORMATS: tuple[LabelFormat, ...] = get_args(LabelFormat)
SPLITS = ("train", "val", "test")

NO_FINDING = "No Finding"

_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}
_SPLIT_IN_NAME = re.compile(r"_labels_(train|val|test)\.csv$", re.IGNORECASE)


@dataclass(frozen=True)
class LabelProblem:
    source: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.field}: {self.message}"


@dataclass(frozen=True)
class LabelRecord:
    external_id: str
    path: str  # relative to the image folder
    labels: tuple[int, ...]  # 0/1, aligned with LabelTable.classes
    patient_id: str | None
    split: str | None
    meta: dict[str, str]
    source: str
    line: int


@dataclass(frozen=True)
class LabelTable:
    format: LabelFormat
    classes: tuple[str, ...]
    records: tuple[LabelRecord, ...]
    problems: tuple[LabelProblem, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def labels_matrix(self) -> npt.NDArray[np.uint8]:
        if not self.records:
            return np.zeros((0, len(self.classes)), dtype=np.uint8)
        return np.asarray([r.labels for r in self.records], dtype=np.uint8)

    def with_problems(self, extra: Iterable[LabelProblem]) -> LabelTable:
        return LabelTable(self.format, self.classes, self.records, (*self.problems, *extra))


class LabelFormatError(ValueError):
    """Raised by :func:`require_ok` when a label table has problems."""

    def __init__(self, problems: Sequence[LabelProblem], *, shown: int = 20):
        self.problems = tuple(problems)
        lines = [str(p) for p in self.problems[:shown]]
        more = len(self.problems) - len(lines)
        text = f"{len(self.problems)} problem(s) in the labels:\n  " + "\n  ".join(lines)
        if more > 0:
            text += f"\n  ... and {more} more"
        super().__init__(text)


def require_ok(table: LabelTable) -> LabelTable:
    if table.problems:
        raise LabelFormatError(table.problems)
    return table


def normalize_split(value: str) -> str | None:
    return _SPLIT_ALIASES.get(value.strip().lower())


def split_from_file_name(path: Path) -> str | None:
    match = _SPLIT_IN_NAME.search(path.name)
    return match.group(1).lower() if match else None


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row; line 1 is the header."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        for i, row in enumerate(reader, start=2):
            yield i, {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        first = next(csv.reader(f), [])
    return [h.strip() for h in first]


class _Reader:
    """Shared bookkeeping of one read: problems, duplicate ids."""

    def __init__(self, fmt: LabelFormat, classes: Sequence[str]):
        self.fmt = fmt
        self.classes = tuple(classes)
        self.index = {c: i for i, c in enumerate(self.classes)}
        self.records: list[LabelRecord] = []
        self.problems: list[LabelProblem] = []
        self.first_seen: dict[str, str] = {}

    def problem(self, source: str, line: int | None, fld: str, message: str) -> None:
        self.problems.append(LabelProblem(source, line, fld, message))

    def add(self, record: LabelRecord) -> None:
        where = f"{record.source}:{record.line}"
        if record.external_id in self.first_seen:
            self.problem(
                record.source,
                record.line,
                "id",
                f"duplicate image id {record.external_id!r} (first at {self.first_seen[record.external_id]})",
            )
            return
        self.first_seen[record.external_id] = where
        self.records.append(record)

    def binary_columns(
        self, source: str, line: int, row: dict[str, str], columns: Sequence[str]
    ) -> tuple[int, ...] | None:
        values: list[int] = []
        bad = False
        for name in columns:
            raw = row.get(name, "")
            if raw in ("0", "1"):
                values.append(int(raw))
            elif raw in ("0.0", "1.0"):
                values.append(int(float(raw)))
            else:
                self.problem(source, line, name, f"label must be 0 or 1, got {raw!r}")
                bad = True
        return None if bad else tuple(values)

    def table(self) -> LabelTable:
        return LabelTable(self.fmt, self.classes, tuple(self.records), tuple(self.problems))


def _check_header(
    reader: _Reader, path: Path, header: Sequence[str], required: Sequence[str]
) -> bool:
    missing = [c for c in required if c not in header]
    if missing:
        reader.problem(
            path.name,
            1,
            "header",
            f"missing column(s) {', '.join(map(repr, missing))}; this {reader.fmt} file needs "
            f"{', '.join(required)}",
        )
        return False
    return True


def _class_columns(
    reader: _Reader, path: Path, header: Sequence[str], id_columns: Sequence[str]
) -> bool:
    known = set(reader.classes)
    ok = True
    for column in header:
        if column in id_columns:
            continue
        if column not in known:
            reader.problem(
                path.name,
                1,
                column,
                f"unknown class column {column!r}; {reader.fmt} classes are: {', '.join(reader.classes)}",
            )
            ok = False
    missing = [c for c in reader.classes if c not in header]
    if missing:
        reader.problem(path.name, 1, "header", f"class column(s) missing: {', '.join(missing)}")
        ok = False
    return ok


def _labels_from_names(
    reader: _Reader, source: str, line: int, fld: str, names: Sequence[str]
) -> tuple[int, ...] | None:
    vector = [0] * len(reader.classes)
    bad = False
    for name in names:
        if name not in reader.index:
            reader.problem(
                source,
                line,
                fld,
                f"unknown class {name!r}; known classes: {', '.join(reader.classes)}",
            )
            bad = True
        else:
            vector[reader.index[name]] = 1
    return None if bad else tuple(vector)
