"""What the engine's tests share: the synthetic long-tailed dataset, decoded once per worker,
and a small CNN trained on it once per test run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import shared_tmp


def _synth_root(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The synthetic dataset's files, written by the first worker that asks."""
    from filelock import FileLock

    from ml.data.synth import write_dataset

    root = shared_tmp(tmp_path_factory, worker_id) / "synth-1200"
    root.mkdir(exist_ok=True)
    with FileLock(str(root / ".lock")):
        if not (root / "done").is_file():
            write_dataset(root, 1200, seed=0, size=64)
            (root / "done").write_text("")
    return root


@pytest.fixture(scope="session")
def synth_splits(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> dict[str, Any]:
    from ml.data.images import load_split
    from ml.data.labels import read_labels, require_ok

    root = _synth_root(tmp_path_factory, worker_id)
    table = require_ok(read_labels("nih-cxr-lt", sorted(root.glob("*_labels_*.csv"))))
    return {s: load_split(table, root / "images", s, 64) for s in ("train", "val", "test")}


@pytest.fixture(scope="session")
def synth_population(
    tmp_path_factory: pytest.TempPathFactory, worker_id: str, synth_splits: dict[str, Any]
) -> Path:
    """One small CNN (seed 0, 6 epochs) trained on the synthetic dataset: the run folder."""
    from filelock import FileLock

    from ml.config import TrainConfig
    from ml.train import is_finished, train_population

    run = shared_tmp(tmp_path_factory, worker_id) / "synth-population"
    run.mkdir(exist_ok=True)
    with FileLock(str(run / ".lock")):
        if not is_finished(run, 0):
            config = TrainConfig(
                model="smallcnn", image_size=64, max_epochs=6, patience=3, lr=1e-3, device="cpu"
            )
            train_population(config, [0], synth_splits["train"], synth_splits["val"], run)
    return run
