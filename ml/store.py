"""The prediction store: a folder with manifest.json and two memory-mapped .npy arrays.

    manifest.json      dataset, classes, image ids, seeds, sparsities, model and pruning config,
                       creation time, shapes, sha256 of each array
    predictions.npy    float32 [S, K, N, C]: P[s, k, n, c] = sigmoid output
    labels.npy         uint8 [N, C]

A store is built in a temporary folder beside its destination and renamed into place when
complete, so a failed run leaves nothing half-written. Opening validates it and names what is
wrong.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ml.fileio import atomic_write, sha256_file

# The study's 20 sparsities (SPEC §2): 0, 0.05, ..., 0.95. Here, not in ml.prune, so that what only
# reads stores (the web server, the analysis) never imports torch.
SPARSITIES: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(20))

FORMAT = "piestudy-prediction-store"
VERSION = 1
PREDICTIONS = "predictions.npy"
LABELS = "labels.npy"
CHUNK = 1 << 22  # values checked at a time when validating


class StoreError(ValueError):
    """A prediction store that cannot be used; the message says what and where."""


@dataclass(frozen=True)
class StoreMeta:
    dataset: str
    classes: tuple[str, ...]
    image_ids: tuple[str, ...]
    seeds: tuple[int, ...]
    sparsities: tuple[float, ...]
    model: dict[str, Any]
    pruning: dict[str, Any]
    notes: dict[str, Any]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.seeds), len(self.sparsities), len(self.image_ids), len(self.classes))


class StoreWriter:
    """Fill predictions[s, k] and labels, then commit() to move the store into place."""

    def __init__(
        self, path: Path, meta: StoreMeta, labels: npt.ArrayLike, *, overwrite: bool = False
    ):
        if path.exists() and not overwrite:
            raise StoreError(f"{path} already exists; choose another folder or allow overwriting")
        _check_meta(meta)
        label_array = np.asarray(labels)
        if label_array.shape != (len(meta.image_ids), len(meta.classes)):
            raise StoreError(
                f"labels have shape {label_array.shape}, expected {(len(meta.image_ids), len(meta.classes))}"
            )
        self.path = path
        self.meta = meta
        self.overwrite = overwrite
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.building-"))
        self.predictions = np.lib.format.open_memmap(
            self.tmp / PREDICTIONS, mode="w+", dtype=np.float32, shape=meta.shape
        )
        self.written = np.zeros(meta.shape[:2], dtype=bool)
        self.extra_files: dict[str, Any] = {}  # JSON files that travel with the store
        np.save(self.tmp / LABELS, label_array.astype(np.uint8))

    def write(self, seed_index: int, sparsity_index: int, probabilities: npt.ArrayLike) -> None:
        p = np.asarray(probabilities, dtype=np.float32)
        expected = self.meta.shape[2:]
        if p.shape != expected:
            raise StoreError(f"predictions for one model must have shape {expected}, got {p.shape}")
        self.predictions[seed_index, sparsity_index] = p
        self.written[seed_index, sparsity_index] = True

    def commit(self) -> PredictionStore:
        missing = np.argwhere(~self.written)
        if missing.size:
            s, k = missing[0]
            raise StoreError(
                f"{len(missing)} (seed, sparsity) blocks were never written, e.g. seed "
                f"{self.meta.seeds[s]} at sparsity {self.meta.sparsities[k]}"
            )
        self.predictions.flush()
        del self.predictions
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "dataset": self.meta.dataset,
            "classes": list(self.meta.classes),
            "image_ids": list(self.meta.image_ids),
            "seeds": list(self.meta.seeds),
            "sparsities": list(self.meta.sparsities),
            "model": self.meta.model,
            "pruning": self.meta.pruning,
            "notes": self.meta.notes,
            "created_at": datetime.now(UTC).isoformat(),
            "shapes": {
                "predictions": list(self.meta.shape),
                "labels": [self.meta.shape[2], self.meta.shape[3]],
            },
            "checksums": {name: sha256_file(self.tmp / name) for name in (PREDICTIONS, LABELS)},
        }
        for name, content in self.extra_files.items():
            atomic_write(self.tmp / name, json.dumps(content, indent=1))
        atomic_write(self.tmp / "manifest.json", json.dumps(manifest, indent=1))
        if self.path.exists():
            old = self.path.with_name(f".{self.path.name}.replaced")
            self.path.rename(old)
            self.tmp.rename(self.path)
            shutil.rmtree(old)
        else:
            self.tmp.rename(self.path)
        return PredictionStore.open(self.path)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None:
            self.abort()


def _check_meta(meta: StoreMeta) -> None:
    if not meta.classes or len(set(meta.classes)) != len(meta.classes):
        raise StoreError("classes must be a non-empty list without repeats")
    if not meta.image_ids or len(set(meta.image_ids)) != len(meta.image_ids):
        raise StoreError("image ids must be a non-empty list without repeats")
    if not meta.seeds or len(set(meta.seeds)) != len(meta.seeds):
        raise StoreError("seeds must be a non-empty list without repeats")
    if list(meta.sparsities) != sorted(set(meta.sparsities)) or meta.sparsities[0] != 0.0:
        raise StoreError("sparsities must increase from 0 without repeats")


@dataclass(frozen=True)
class PredictionStore:
    path: Path
    meta: StoreMeta
    manifest: dict[str, Any]
    predictions: npt.NDArray[np.float32]  # memory-mapped, read-only [S, K, N, C]
    labels: npt.NDArray[np.uint8]  # [N, C]

    @classmethod
    def open(cls, path: Path, *, verify_checksums: bool = False) -> PredictionStore:
        where = f"prediction store {path}"
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            raise StoreError(f"{where}: no manifest.json (is this a prediction store folder?)")
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as exc:
            raise StoreError(
                f"{where}: manifest.json is not valid JSON ({exc.msg}, line {exc.lineno})"
            ) from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise StoreError(f"{where}: manifest.json is not a {FORMAT} manifest")
        if manifest.get("version") != VERSION:
            raise StoreError(
                f"{where}: version {manifest.get('version')} is not supported (this is {VERSION})"
            )
        try:
            meta = StoreMeta(
                dataset=str(manifest["dataset"]),
                classes=tuple(manifest["classes"]),
                image_ids=tuple(manifest["image_ids"]),
                seeds=tuple(int(s) for s in manifest["seeds"]),
                sparsities=tuple(float(k) for k in manifest["sparsities"]),
                model=dict(manifest.get("model", {})),
                pruning=dict(manifest.get("pruning", {})),
                notes=dict(manifest.get("notes", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{where}: manifest.json lacks or mangles a field: {exc}") from exc
        try:
            _check_meta(meta)
        except StoreError as exc:
            raise StoreError(f"{where}: {exc}") from exc
        for name in (PREDICTIONS, LABELS):
            if not (path / name).is_file():
                raise StoreError(f"{where}: {name} is missing")
        if verify_checksums:
            for name, expected in manifest.get("checksums", {}).items():
                if sha256_file(path / name) != expected:
                    raise StoreError(
                        f"{where}: {name} does not match its checksum (changed or damaged)"
                    )
        try:
            predictions = np.load(path / PREDICTIONS, mmap_mode="r")
            labels = np.load(path / LABELS, mmap_mode="r")
        except ValueError as exc:
            raise StoreError(f"{where}: an array file is damaged: {exc}") from exc
        if predictions.shape != meta.shape:
            raise StoreError(
                f"{where}: predictions have shape {predictions.shape}, the manifest says {meta.shape} "
                "(seeds, sparsities, images, classes)"
            )
        if predictions.dtype != np.float32:
            raise StoreError(f"{where}: predictions are {predictions.dtype}, expected float32")
        if labels.shape != meta.shape[2:]:
            raise StoreError(
                f"{where}: labels have shape {labels.shape}, expected {meta.shape[2:]}"
            )
        _check_values(predictions, where)
        if not np.isin(np.asarray(labels), (0, 1)).all():
            raise StoreError(f"{where}: labels must be 0 or 1")
        return cls(path, meta, manifest, predictions, labels)

    def sparsity_index(self, k: float) -> int:
        for i, s in enumerate(self.meta.sparsities):
            if abs(s - k) < 1e-9:
                return i
        raise StoreError(f"sparsity {k} is not in this store ({list(self.meta.sparsities)})")


def _check_values(predictions: npt.NDArray[np.float32], where: str) -> None:
    flat = predictions.reshape(-1)
    for start in range(0, flat.size, CHUNK):
        block = np.asarray(flat[start : start + CHUNK])
        if not np.isfinite(block).all():
            i = start + int(np.flatnonzero(~np.isfinite(block))[0])
            raise StoreError(
                f"{where}: a prediction is NaN or infinite at {_position(predictions.shape, i)}"
            )
        if block.min() < 0.0 or block.max() > 1.0:
            bad = np.flatnonzero((block < 0) | (block > 1))[0]
            raise StoreError(
                f"{where}: predictions must be probabilities in [0, 1]; found {block[bad]} at "
                f"{_position(predictions.shape, start + int(bad))}"
            )


def _position(shape: Sequence[int], flat_index: int) -> str:
    s, k, n, c = np.unravel_index(flat_index, tuple(shape))
    return f"seed index {s}, sparsity index {k}, image {n}, class {c}"
