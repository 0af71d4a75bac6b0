"""Label files of SPEC §5 read into one table, with every problem found named by file and line.

Formats:
- ``nih-cxr-lt``: ``miccai2023_nih-cxr-lt_labels_{train,val,test}.csv`` (id, subj_id, 20 classes)
- ``mimic-cxr-lt``: ``miccai2023_mimic-cxr-lt_labels_{train,val,test}.csv`` (path, ids, 19 classes)
- ``cxr-lt-2023``, ``cxr-lt-2024``: the CXR-LT challenges' files (26 classes; ``fpath`` and 40 or
  45 classes, "Normal" for "No Finding"): see ml.data.labels.challenge
- ``chestxray14``: NIH ``Data_Entry_2017.csv`` (Image Index, ``|``-joined Finding Labels, ...)
- ``plain``: ``image,labels`` with ``|``-joined labels, optional ``patient`` and ``split``

Reading never raises on bad rows: it collects :class:`LabelProblem` s so that an importer can
show them all (or the first ones) and import nothing.
"""

from __future__ import annotations

import codecs
import csv
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from ml.data.labels.challenge import CXR_LT_2023_CLASSES, _read_challenge
from ml.data.labels.chestxray14 import CHESTXRAY14_CLASSES, _read_chestxray14
from ml.data.labels.common import (
    LABEL_FORMATS,
    NO_FINDING,
    SPLITS,
    LabelFormat,
    LabelFormatError,
    LabelProblem,
    LabelRecord,
    LabelTable,
    normalize_split,
    require_ok,
    split_from_file_name,
)
from ml.data.labels.longtailed import MIMIC_CXR_LT_CLASSES, NIH_CXR_LT_CLASSES, _read_lt
from ml.data.labels.plain import _read_plain

__all__ = [
    "CHESTXRAY14_CLASSES",
    "CXR_LT_2023_CLASSES",
    "LABEL_FORMATS",
    "MAX_LABEL_BYTES",
    "MIMIC_CXR_LT_CLASSES",
    "NIH_CXR_LT_CLASSES",
    "NO_FINDING",
    "SPLITS",
    "LabelFormat",
    "LabelFormatError",
    "LabelProblem",
    "LabelRecord",
    "LabelTable",
    "check_text_file",
    "missing_images",
    "normalize_split",
    "patient_leakage",
    "read_labels",
    "read_split_file",
    "require_ok",
    "resolve_image",
    "split_from_file_name",
    "unreadable_images",
]


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
    elif fmt in ("cxr-lt-2023", "cxr-lt-2024"):
        table = _read_challenge(fmt, files, splits)
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


def unreadable_images(
    records: Sequence[LabelRecord], image_dir: Path, workers: int | None = None
) -> list[LabelProblem]:
    """Every listed image that exists is opened and decoded (PNG, JPEG, TIFF, DICOM); each one
    that cannot be read is a problem naming its file and the reason. Decoding runs on a thread
    pool (the decoders release the GIL)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from ml.data.radiograph import check_image

    found = []
    for r in records:
        resolved = resolve_image(image_dir, r.path)
        if resolved is not None and resolved.is_file():
            found.append((r, resolved))
    if not found:
        return []
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        reasons = list(pool.map(lambda item: check_image(item[1]), found))
    return [
        LabelProblem(r.source, r.line, "image", f"image file {r.path!r} cannot be read: {why}")
        for (r, _), why in zip(found, reasons, strict=True)
        if why is not None
    ]
