"""Population inference at every sparsity into a prediction store.

The images are decoded once (SplitData) and reused for all S x K model variants; each seed's
model is pruned incrementally along its single weight ranking (ml.prune).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from ml.config import resolve_device
from ml.data.cache import CachedRows
from ml.data.images import SplitData, to_model_input
from ml.prune import PruningMethod, pruned_models, rank_weights, sparsity_report
from ml.store import SPARSITIES, PredictionStore, StoreMeta, StoreWriter
from ml.train import epochs_run, load_seed_model

Progress = Callable[[str, int, int], None]
PRUNING_REPORT = "pruning_report.json"  # per seed, per sparsity, per layer: weights and zeros


@dataclass(frozen=True)
class PruningConfig:
    method: PruningMethod = "l1"
    min_keep: float = 0.0  # Global MP's per-layer minimum (0.0005 = 0.05%); 0 turns it off
    sparsities: tuple[float, ...] = SPARSITIES


@torch.no_grad()
def predict(
    model: nn.Module, images: torch.Tensor | CachedRows, batch_size: int, device: torch.device
) -> torch.Tensor:
    """Sigmoid outputs [N, C] on the CPU. `images` are uint8 [N, H, W], best already on `device`
    (predict_seed moves a split there once per seed): each batch is normalised on the device, so
    the host sends one byte per pixel once, not four per pixel per sparsity."""
    model.eval()
    out = [
        torch.sigmoid(model(to_model_input(images[s : s + batch_size].to(device))))
        for s in range(0, len(images), batch_size)
    ]
    return torch.cat(out).float().cpu()


def predict_population(
    run_dir: Path, seeds: Sequence[int], data: SplitData, out: Path, *,
    dataset: str, pruning: PruningConfig = PruningConfig(), batch_size: int = 128,
    device: str = "auto", overwrite: bool = False, progress: Progress | None = None,
) -> PredictionStore:  # fmt: skip
    dev = resolve_device(device)
    first_config = None
    meta_model: dict[str, object] = {}
    for seed in seeds:
        _, first_config = load_seed_model(run_dir, seed, len(data.classes), torch.device("cpu"))
        meta_model = {
            "run_dir": str(run_dir.resolve()), "name": first_config.model,
            **first_config.to_dict(), "epochs_run": epochs_run(run_dir, seeds),
        }  # fmt: skip
        break
    if first_config is None:
        raise ValueError("give at least one seed")
    meta = StoreMeta(
        dataset=dataset,
        classes=data.classes,
        image_ids=data.image_ids,
        seeds=tuple(seeds),
        sparsities=pruning.sparsities,
        model=meta_model,
        pruning={
            "method": pruning.method,
            "min_keep": pruning.min_keep,
            "scope": "Conv2d and Linear weights",
        },
        notes={"made_by": "piestudy ml prune-predict"},
    )
    total = len(seeds) * len(pruning.sparsities)
    done = [0]

    def step() -> None:
        done[0] += 1
        if progress:
            progress("prune + predict", done[0], total)

    report: dict[str, dict[str, list[dict[str, object]]]] = {}
    with StoreWriter(out, meta, data.labels.numpy().astype("uint8"), overwrite=overwrite) as writer:
        for si, seed in enumerate(seeds):
            model, _ = load_seed_model(run_dir, seed, len(data.classes), dev)
            predictions, report[str(seed)] = predict_seed(
                model, seed, data, pruning, batch_size, dev, step
            )
            for ki in range(len(pruning.sparsities)):
                writer.write(si, ki, predictions[ki])
        writer.extra_files[PRUNING_REPORT] = report
        return writer.commit()


SeedReport = dict[str, list[dict[str, object]]]  # sparsity -> per-layer weights and zeros


def predict_seed(
    model: nn.Module, seed: int, data: SplitData, pruning: PruningConfig, batch_size: int,
    device: torch.device, step: Callable[[], None] | None = None,
) -> tuple[npt.NDArray[np.float32], SeedReport]:  # fmt: skip
    """One seed's predictions at every sparsity, [K, N, C], and its pruning report. `step` is
    called after each sparsity (progress; it may raise to stop)."""
    ranking = rank_weights(model, method=pruning.method, min_keep=pruning.min_keep, seed=seed)
    out = np.empty((len(pruning.sparsities), *data.labels.shape), dtype=np.float32)
    report: SeedReport = {}
    images = data.images.to(device)  # once per seed, as uint8 (a no-op on the CPU)
    for ki, (k, pruned) in enumerate(pruned_models(model, ranking, pruning.sparsities)):
        out[ki] = predict(pruned, images, batch_size, device).numpy()
        report[f"{k:g}"] = [
            {"layer": r.name, "weights": r.size, "zeros": r.zeros, "sparsity": round(r.sparsity, 6)}
            for r in sparsity_report(pruned)
        ]
        if step:
            step()
    return out, report
