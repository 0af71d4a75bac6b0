"""Label files of SPEC §5 read into one table, with every problem found named by file and line.

Formats:
- ``nih-cxr-lt``: ``miccai2023_nih-cxr-lt_labels_{train,val,test}.csv`` (id, subj_id, 20 classes)
- ``mimic-cxr-lt``: ``miccai2023_mimic-cxr-lt_labels_{train,val,test}.csv`` (path, ids, 19 classes)
- ``chestxray14``: NIH ``Data_Entry_2017.csv`` (Image Index, ``|``-joined Finding Labels, ...)
- ``plain``: ``image,labels`` with ``|``-joined labels, optional ``patient`` and ``split``

Reading never raises on bad rows: it collects :class:`LabelProblem` s so that an importer can
show them all (or the first ones) and import nothing.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

LabelFormat = Literal["nih-cxr-lt", "mimic-cxr-lt", "chestxray14", "plain"]
LABEL_FORMATS: tuple[LabelFormat, ...] = ("nih-cxr-lt", "mimic-cxr-lt", "chestxray14", "plain")
SPLITS = ("train", "val", "test")

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


def read_split_file(path: Path) -> tuple[dict[str, str], list[LabelProblem]]:
    """A two-column CSV: image id, split (train/val/test)."""
    splits: dict[str, str] = {}
    problems: list[LabelProblem] = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None or len(header) < 2:
            return {}, [
                LabelProblem(path.name, 1, "header", "a split file needs two columns: image, split")
            ]
        for line, row in enumerate(rows, start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                problems.append(LabelProblem(path.name, line, "split", "missing split value"))
                continue
            image, value = row[0].strip(), row[1].strip()
            split = normalize_split(value)
            if split is None:
                problems.append(
                    LabelProblem(
                        path.name, line, "split", f"unknown split {value!r}; use train, val or test"
                    )
                )
            elif image in splits:
                problems.append(LabelProblem(path.name, line, "image", f"{image!r} listed twice"))
            else:
                splits[image] = split
    return splits, problems


MAX_LABEL_BYTES = 512 * 1024 * 1024  # MIMIC-CXR-LT's largest label file is about 40 MB


def check_text_file(path: Path, limit: int | None = None) -> None:
    """Refuse, naming the file, what is too large or not UTF-8 text (read once, in blocks)."""
    limit = MAX_LABEL_BYTES if limit is None else limit
    size = path.stat().st_size
    if size > limit:
        raise ValueError(f"{path.name}: {size:,} bytes, over the {limit:,} a label file may have")
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"{path.name}: not UTF-8 text ({exc.reason} at byte {offset + exc.start})"
                ) from exc
            if "\x00" in text:
                raise ValueError(f"{path.name}: binary data (a NUL byte), not a CSV file")
            offset += len(block)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path.name}: not UTF-8 text (truncated at the end)") from exc


def read_labels(
    fmt: LabelFormat,
    files: Sequence[Path],
    *,
    split_file: Path | None = None,
    classes: Sequence[str] | None = None,
) -> LabelTable:
    """Read one or more label files of one format; problems are collected, never raised."""
    if fmt not in LABEL_FORMATS:
        raise ValueError(f"unknown label format {fmt!r}; use one of {', '.join(LABEL_FORMATS)}")
    if not files:
        raise ValueError("give at least one labels file")
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"labels file not found: {path}")
    for path in [
        *files,
        *([split_file] if split_file is not None and split_file.is_file() else []),
    ]:
        check_text_file(path)
    splits: dict[str, str] = {}
    split_problems: list[LabelProblem] = []
    if split_file is not None:
        if not split_file.is_file():
            raise FileNotFoundError(f"split file not found: {split_file}")
        splits, split_problems = read_split_file(split_file)
    if fmt in ("nih-cxr-lt", "mimic-cxr-lt"):
        table = _read_lt(fmt, files, splits)
    elif fmt == "chestxray14":
        table = _read_chestxray14(files, splits)
    else:
        table = _read_plain(files, splits, classes)
    extra = list(split_problems)
    if split_file is not None:
        ids = {r.external_id for r in table.records}
        for record in table.records:
            if record.external_id not in splits:
                extra.append(
                    LabelProblem(
                        record.source,
                        record.line,
                        "split",
                        f"{record.external_id!r} is not in {split_file.name}",
                    )
                )
        for image in splits:
            if image not in ids:
                extra.append(
                    LabelProblem(split_file.name, None, "image", f"{image!r} has no labels row")
                )
    return table.with_problems(extra)


def patient_leakage(records: Sequence[LabelRecord]) -> list[LabelProblem]:
    """One problem per patient whose images lie in more than one split."""
    parts: dict[str, dict[str, LabelRecord]] = defaultdict(dict)
    for r in records:
        if r.patient_id and r.split:
            parts[r.patient_id].setdefault(r.split, r)
    problems = []
    for patient, by_split in parts.items():
        if len(by_split) > 1:
            examples = ", ".join(f"{s}: {r.external_id}" for s, r in sorted(by_split.items()))
            first = min(by_split.values(), key=lambda r: (r.source, r.line))
            problems.append(
                LabelProblem(
                    first.source,
                    first.line,
                    "patient",
                    f"patient {patient!r} appears in more than one split ({examples})",
                )
            )
    return problems


def resolve_image(image_dir: Path, relative: str) -> Path | None:
    """The image's path inside image_dir, or None when the name would leave the folder."""
    if not relative or "\x00" in relative or Path(relative).is_absolute():
        return None
    root = image_dir.resolve()
    candidate = (root / relative).resolve()
    return candidate if candidate.is_relative_to(root) else None


def missing_images(records: Sequence[LabelRecord], image_dir: Path) -> list[LabelProblem]:
    problems = []
    for r in records:
        resolved = resolve_image(image_dir, r.path)
        if resolved is None:
            problems.append(
                LabelProblem(
                    r.source, r.line, "image", f"{r.path!r} points outside the image folder"
                )
            )
        elif not resolved.is_file():
            problems.append(
                LabelProblem(
                    r.source, r.line, "image", f"image file {r.path!r} not found in {image_dir}"
                )
            )
    return problems
