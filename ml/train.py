"""Population training: one seed = one function call; finished seeds are skipped (resumable).

Per seed: BCE-with-logits, Adam, early stopping on validation loss; batches are gathered from
the split (from the image cache's file: only their rows), augmented as whole batches on
the training device (ml.data.augment), and on CUDA sent through pinned memory and run in
channels_last with bf16 autocast; the best checkpoint
(model.pt), its config (config.json) and its history (history.json) under run_dir/seed-{s}/.
Each file is written to a temporary name and renamed, and history.json (written last) marks a
finished seed.

After every epoch the whole training state is kept in last.pt (model, optimizer, epoch, the
early-stopping state, the history so far, and the RNG states of torch and of the shuffling), so
that a seed interrupted at any point (kill -9 included) resumes after its last whole epoch, and
ends exactly as it would have uninterrupted. A last.pt of another configuration is not resumed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from ml.config import TrainConfig, resolve_device
from ml.data.augment import augment_batch
from ml.data.images import SplitData, to_model_input
from ml.fileio import atomic_output, atomic_write
from ml.models import create_model

Progress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass(frozen=True)
class SeedResult:
    seed: int
    directory: Path
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    skipped: bool
    resumed_after: int = 0  # the epoch an interrupted training resumed after (0: from the start)


def seed_dir(run_dir: Path, seed: int) -> Path:
    return run_dir / f"seed-{seed}"


def is_finished(run_dir: Path, seed: int) -> bool:
    """A seed is finished once its history is written (last, after its model)."""
    d = seed_dir(run_dir, seed)
    return (d / "history.json").is_file() and (d / "model.pt").is_file()


def finished_seeds(run_dir: Path) -> list[int]:
    found = (p.name.removeprefix("seed-") for p in run_dir.glob("seed-*"))
    return sorted(int(s) for s in found if s.isdigit() and is_finished(run_dir, int(s)))


LAST = "last.pt"


def _save_state(model: nn.Module, path: Path) -> None:
    with atomic_output(path) as tmp:
        torch.save(model.state_dict(), tmp)


def _save_last(path: Path, state: dict[str, Any]) -> None:
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


def _resume(path: Path, config: TrainConfig) -> dict[str, Any] | None:
    """The training state after the last whole epoch, where one of this configuration is kept."""
    if not path.is_file():
        return None
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return state if state.get("config") == config.to_dict() else None


def gather_batch(
    data: SplitData, rows: torch.Tensor, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """These rows' uint8 images and labels on the device (only these rows are read: from the
    image cache's file where there is one); through pinned memory to a GPU."""
    cuda = device.type == "cuda"
    x, y = data.images[rows], data.labels[rows]
    if cuda:
        x, y = x.pin_memory(), y.pin_memory()
    return x.to(device, non_blocking=cuda), y.to(device, non_blocking=cuda)


def train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module, x: torch.Tensor,
    y: torch.Tensor, generator: torch.Generator, *, augment: bool = True,
    mixed_precision: bool = True,
) -> torch.Tensor:  # fmt: skip
    """One optimiser step on a batch on the training device (uint8 images [B, H, W], labels):
    augmented whole there, normalised, channels_last and bf16 autocast on CUDA. The loss."""
    cuda = x.device.type == "cuda"
    if augment:
        x = augment_batch(x, generator)
    x = to_model_input(x)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, torch.bfloat16, enabled=cuda and mixed_precision):
        loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    detached: torch.Tensor = loss.detach()
    return detached


@torch.no_grad()
def evaluate_loss(
    model: nn.Module, data: SplitData, batch_size: int, device: torch.device
) -> float:
    model.eval()
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    total = 0.0
    for start in range(0, len(data.image_ids), batch_size):
        x = to_model_input(data.images[start : start + batch_size].to(device))
        y = data.labels[start : start + batch_size].to(device)
        total += float(loss_fn(model(x), y))
    return total / (len(data.image_ids) * len(data.classes))


def train_seed(
    config: TrainConfig, seed: int, train: SplitData, val: SplitData, run_dir: Path,
    progress: Progress | None = None, check: Callable[[], None] | None = None,
) -> SeedResult:  # fmt: skip
    """Train one seed. `check` is called before every batch; it may raise to stop the training
    (a cancelled run); nothing of an unfinished seed counts as finished."""
    out = seed_dir(run_dir, seed)
    if is_finished(run_dir, seed):
        history = json.loads((out / "history.json").read_text())
        return SeedResult(
            seed, out, history["best_epoch"], history["best_val_loss"], len(history["epochs"]), True
        )
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    pretrained = Path(config.pretrained_path) if config.pretrained_path else None
    backbone: list[str] = []  # what the pretrained weights gave, and what they did not
    model = create_model(
        config.model, len(train.classes), pretrained_path=pretrained, say=backbone.append
    ).to(device)
    cuda = device.type == "cuda"
    if cuda:  # convolutions run fastest on NHWC tensors
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    best, best_epoch, epochs, start = math.inf, 0, [], 1
    config.save(out / "config.json")
    resumed = _resume(out / LAST, config)
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        torch.set_rng_state(resumed["torch_rng"])
        generator.set_state(resumed["shuffle_rng"])
        if torch.cuda.is_available() and resumed.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(resumed["cuda_rng"])
        best, best_epoch, epochs = resumed["best"], resumed["best_epoch"], resumed["epochs"]
        backbone[:] = resumed["backbone"]
        start = resumed["epoch"] + 1
        if progress:
            progress(
                f"seed {seed}: resumed after epoch {resumed['epoch']}",
                resumed["epoch"],
                config.max_epochs,
            )
    stopped = bool(epochs) and epochs[-1]["epoch"] - best_epoch >= config.patience
    for epoch in range(start, 0 if stopped else config.max_epochs + 1):
        model.train()
        running = 0.0
        order = torch.randperm(len(train.image_ids), generator=generator)
        for first in range(0, len(order), config.batch_size):
            rows = order[first : first + config.batch_size]
            if check:
                check()
            x, y = gather_batch(train, rows, device)
            loss = train_step(
                model, optimizer, loss_fn, x, y, generator,
                augment=config.augment, mixed_precision=config.mixed_precision,
            )  # fmt: skip
            running += float(loss) * len(rows)
        val_loss = evaluate_loss(model, val, config.batch_size, device)
        epochs.append(
            {"epoch": epoch, "train_loss": running / len(train.image_ids), "val_loss": val_loss}
        )
        if val_loss < best:
            best, best_epoch = val_loss, epoch
            _save_state(model, out / "model.pt")
        _save_last(out / LAST, {
            "config": config.to_dict(), "epoch": epoch, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
            "shuffle_rng": generator.get_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "best": best, "best_epoch": best_epoch, "epochs": epochs, "backbone": backbone,
        })  # fmt: skip
        if progress:
            progress(f"seed {seed}", epoch, config.max_epochs)
        if epoch - best_epoch >= config.patience:
            break
    history = {
        "seed": seed,
        "best_epoch": best_epoch,
        "best_val_loss": best,
        "epochs": epochs,
        "classes": list(train.classes),
        "pretrained": backbone[0] if backbone else None,
    }
    atomic_write(out / "history.json", json.dumps(history, indent=1))
    (out / LAST).unlink(missing_ok=True)  # finished: the history marks it
    return SeedResult(seed, out, best_epoch, best, len(epochs), False, start - 1)


def train_population(
    config: TrainConfig, seeds: Sequence[int], train: SplitData, val: SplitData, run_dir: Path,
    progress: Progress | None = None,
) -> list[SeedResult]:  # fmt: skip
    if train.classes != val.classes:
        raise ValueError("train and val splits have different classes")
    run_dir.mkdir(parents=True, exist_ok=True)
    return [train_seed(config, s, train, val, run_dir, progress) for s in seeds]


def load_seed_model(
    run_dir: Path, seed: int, num_classes: int, device: torch.device
) -> tuple[nn.Module, TrainConfig]:
    d = seed_dir(run_dir, seed)
    if not is_finished(run_dir, seed):
        raise FileNotFoundError(f"seed {seed} has no finished checkpoint in {run_dir}")
    config = TrainConfig.load(d / "config.json")
    model = create_model(config.model, num_classes)
    model.load_state_dict(torch.load(d / "model.pt", map_location="cpu", weights_only=True))
    return model.to(device).eval(), config


def epochs_run(run_dir: Path, seeds: Sequence[int]) -> dict[str, int]:
    """The epochs each finished seed trained for (early stopping decides), by seed."""
    out = {}
    for seed in seeds:
        history = seed_dir(run_dir, seed) / "history.json"
        if history.is_file():
            out[str(seed)] = len(json.loads(history.read_text())["epochs"])
    return out


def trained_weights(run_dir: Path, num_classes: int) -> list[npt.NDArray[np.float32]]:
    """The prunable weights (Conv2d and Linear) of the run's first finished seed, as the
    analysis's weight histogram (Fig. 1) takes them."""
    from ml.prune import prunable_weights

    seeds = finished_seeds(run_dir)
    if not seeds:
        raise FileNotFoundError(f"no finished checkpoint in {run_dir}")
    model, _ = load_seed_model(run_dir, seeds[0], num_classes, torch.device("cpu"))
    return [np.asarray(p.detach().numpy()) for _, p in prunable_weights(model)]
