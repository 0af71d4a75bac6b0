"""Frozen run configurations, saved as JSON beside every checkpoint and prediction store."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import torch


@dataclass(frozen=True)
class TrainConfig:
    model: str = "smallcnn"
    image_size: int = 256
    max_epochs: int = 30
    patience: int = 3  # epochs without a better validation loss before stopping
    batch_size: int = 64
    lr: float = 1e-4  # Adam, as in the paper
    weight_decay: float = 0.0
    augment: bool = True
    device: str = "auto"  # "auto": CUDA where present, else CPU
    pretrained_path: str | None = None
    mixed_precision: bool = True  # bf16 autocast, on CUDA only

    def __post_init__(self) -> None:
        if self.image_size < 16 or self.batch_size < 1 or self.max_epochs < 1 or self.patience < 1:
            raise ValueError("image_size >= 16, batch_size >= 1, max_epochs >= 1, patience >= 1")
        if self.lr <= 0:
            raise ValueError("lr must be positive")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: Path) -> None:
        from ml.fileio import atomic_write

        atomic_write(path, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: Path) -> Self:
        return cls.from_dict(json.loads(path.read_text()))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available here")
    return torch.device(name)
