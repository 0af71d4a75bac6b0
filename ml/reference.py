"""Import the reference code's saved predictions (SPEC §5) into a prediction store.

The reference code saves one pickled pandas DataFrame per (seed, k), named
``{dataset}_resnet50_seed-{s}_prune-{k}.pkl``: N rows, one probability column per class, and
``label`` (the true classes joined with ``|``). The pickles carry no image ids: row n is the n-th
row of the test label CSV, so that CSV is taken too; without it, row numbers stand in (and the
result says so).

Unpickling can run arbitrary code: this module only reads the directory it is given, and the
command that calls it says so before it starts.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ml.store import PredictionStore, StoreError, StoreMeta, StoreWriter

PICKLE_NAME = re.compile(
    r"^(?P<dataset>.+)_resnet50_seed-(?P<seed>\d+)_prune-(?P<k>\d+(?:\.\d+)?)\.pkl$"
)
ID_COLUMNS = ("id", "dicom_id", "path", "Image Index", "image")


class ReferenceImportError(ValueError):
    pass


@dataclass(frozen=True)
class ReferenceImport:
    store: PredictionStore
    files: int
    used_row_numbers: bool


def find_pickles(directory: Path) -> dict[str, dict[tuple[int, float], Path]]:
    found: dict[str, dict[tuple[int, float], Path]] = defaultdict(dict)
    for path in sorted(directory.iterdir()):
        m = PICKLE_NAME.match(path.name)
        if m:
            found[m["dataset"]][(int(m["seed"]), float(m["k"]))] = path
    return dict(found)


def _image_ids(labels_csv: Path, n: int) -> list[str]:
    with labels_csv.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        column = next((c for c in ID_COLUMNS if c in (reader.fieldnames or [])), None)
        if column is None:
            raise ReferenceImportError(
                f"{labels_csv.name}: no id column (one of {', '.join(ID_COLUMNS)})"
            )
        ids = [row[column] for row in reader]
    if len(ids) != n:
        raise ReferenceImportError(
            f"{labels_csv.name} has {len(ids)} rows but the pickles have {n}: row n of the pickles must "
            "be row n of the test label CSV"
        )
    return ids


def _read_frame(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_pickle(path)  # noqa: S301  (only files the user named; the CLI warns)
    except Exception as exc:
        raise ReferenceImportError(
            f"{path.name}: cannot be read as a pickled DataFrame ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(frame, pd.DataFrame):
        raise ReferenceImportError(
            f"{path.name}: holds a {type(frame).__name__}, not a pandas DataFrame"
        )
    if "label" not in frame.columns:
        raise ReferenceImportError(f"{path.name}: has no 'label' column")
    return frame


def import_reference(
    directory: Path,
    out: Path,
    *,
    labels_csv: Path | None = None,
    dataset: str | None = None,
    overwrite: bool = False,
) -> ReferenceImport:
    if not directory.is_dir():
        raise ReferenceImportError(f"not a folder: {directory}")
    groups = find_pickles(directory)
    if not groups:
        raise ReferenceImportError(
            f"no files named like {{dataset}}_resnet50_seed-{{s}}_prune-{{k}}.pkl in {directory}"
        )
    if dataset is None:
        if len(groups) > 1:
            raise ReferenceImportError(
                f"several datasets in {directory}: {', '.join(sorted(groups))}; name one"
            )
        dataset = next(iter(groups))
    if dataset not in groups:
        raise ReferenceImportError(f"no pickles of dataset {dataset!r} in {directory}")
    files = groups[dataset]
    seeds = sorted({s for s, _ in files})
    sparsities = sorted({k for _, k in files})
    missing = [(s, k) for s in seeds for k in sparsities if (s, k) not in files]
    if missing:
        shown = ", ".join(f"seed {s} at {k:g}" for s, k in missing[:8])
        raise ReferenceImportError(f"{len(missing)} (seed, sparsity) files are missing: {shown}")
    if sparsities[0] != 0.0:
        raise ReferenceImportError("no dense (prune-0) predictions found")

    first = _read_frame(files[(seeds[0], sparsities[0])])
    classes = [str(c) for c in first.columns if c != "label"]
    n = len(first)
    ids = (
        _image_ids(labels_csv, n) if labels_csv is not None else [f"row-{i:06d}" for i in range(n)]
    )
    index = {c: i for i, c in enumerate(classes)}
    labels = np.zeros((n, len(classes)), dtype=np.uint8)
    for row, text in enumerate(first["label"].astype(str)):
        for name in filter(None, (t.strip() for t in text.split("|"))):
            if name not in index:
                raise ReferenceImportError(
                    f"row {row}: label {name!r} is not one of the probability columns"
                )
            labels[row, index[name]] = 1
    meta = StoreMeta(
        dataset=dataset,
        classes=tuple(classes),
        image_ids=tuple(ids),
        seeds=tuple(seeds),
        sparsities=tuple(sparsities),
        model={"name": "resnet50", "source": "reference pickles"},
        pruning={"method": "l1", "source": "reference pickles"},
        notes={
            "imported_from": str(directory.resolve()),
            "image_ids": "from " + labels_csv.name
            if labels_csv
            else "row numbers (no label CSV given)",
        },
    )
    try:
        with StoreWriter(out, meta, labels, overwrite=overwrite) as writer:
            for si, s in enumerate(seeds):
                for ki, k in enumerate(sparsities):
                    frame = first if (si, ki) == (0, 0) else _read_frame(files[(s, k)])
                    cols = [str(c) for c in frame.columns if c != "label"]
                    if cols != classes:
                        raise ReferenceImportError(
                            f"{files[(s, k)].name}: its columns differ from the first file's"
                        )
                    if len(frame) != n:
                        raise ReferenceImportError(
                            f"{files[(s, k)].name}: {len(frame)} rows, expected {n}"
                        )
                    values = frame[classes].to_numpy(dtype=np.float64)
                    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
                        raise ReferenceImportError(
                            f"{files[(s, k)].name}: values must be probabilities in [0, 1]"
                        )
                    writer.write(si, ki, values)
            store = writer.commit()
    except StoreError as exc:
        raise ReferenceImportError(str(exc)) from exc
    return ReferenceImport(store, len(seeds) * len(sparsities), labels_csv is None)
