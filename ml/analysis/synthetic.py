"""Synthetic prediction stores with a known answer, for tests and benchmarks.

Labels follow a long tail (prevalence log-spaced from 30% down to 0.1%). Each seed's dense model
separates positives from negatives; pruning at k erodes class c's signal from an onset k_c on.
The training counts of the classes travel in the manifest's notes (`train_counts`).

- `rare_forget_first=True`: training counts follow the test prevalence and the onset rises with
  log frequency, so rare classes degrade first (the paper's finding).
- `rare_forget_first=False`, the control: onsets are random and the training counts are drawn
  independently of the classes, so forgetting has nothing to do with training frequency.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ml.store import SPARSITIES, PredictionStore, StoreMeta, StoreWriter


def synthetic_store(
    out: Path, *, seeds: int = 5, images: int = 2000, classes: int = 12, rare_forget_first: bool = True,
    seed: int = 0, overwrite: bool = False,
) -> PredictionStore:  # fmt: skip
    rng = np.random.default_rng(seed)
    prevalence = np.logspace(np.log10(0.3), np.log10(0.001), classes)
    labels = (rng.random((images, classes)) < prevalence).astype(np.uint8)
    labels[rng.integers(0, images, classes), np.arange(classes)] = 1  # every class has a positive
    logf = np.log10(prevalence)
    if rare_forget_first:
        onset = 0.3 + 0.5 * (logf - logf.min()) / np.ptp(logf)  # rare: 0.3, common: 0.8
        train_counts = [max(1, round(5 * n)) for n in labels.sum(axis=0)]
    else:
        onset = rng.uniform(0.3, 0.8, classes)
        train_counts = [int(x) for x in np.round(10 ** rng.uniform(0.5, 4.0, classes))]
    names = tuple(f"class {i:02d}" for i in range(classes))
    meta = StoreMeta(
        dataset="synthetic-store", classes=names, image_ids=tuple(f"img{i:06d}" for i in range(images)),
        seeds=tuple(range(seeds)), sparsities=SPARSITIES, model={"name": "synthetic"}, pruning={"method": "l1"},
        notes={"rare_forget_first": rare_forget_first, "prevalence": prevalence.tolist(), "train_counts": train_counts},
    )  # fmt: skip
    with StoreWriter(out, meta, labels, overwrite=overwrite) as w:
        for s in range(seeds):
            noise = rng.normal(0, 1, (images, classes))
            for ki, k in enumerate(SPARSITIES):
                keep = 1 - np.clip((k - onset) / (1 - onset), 0, 1) ** 0.7
                jitter = rng.normal(0, 0.15, (images, classes)) * (k > 0)
                logits = 2.5 * keep * (2 * labels.astype(np.float64) - 1) + noise + jitter - 1.0
                w.write(s, ki, 1 / (1 + np.exp(-logits)))
        return w.commit()


def train_counts_for(store: PredictionStore) -> list[int]:
    """The training counts a synthetic store was made with."""
    return [int(n) for n in store.meta.notes["train_counts"]]
