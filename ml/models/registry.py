"""Models by name (timm's habit): create_model("resnet50" | "resnet18" | "smallcnn", ...).

Nothing is downloaded: ImageNet weights come from a local file if the user has one (a torchvision
state dict); the classifier head is always new, sized to the label set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet18, resnet50

ModelBuilder = Callable[[int], nn.Module]
_REGISTRY: dict[str, ModelBuilder] = {}


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    def add(builder: ModelBuilder) -> ModelBuilder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = builder
        return builder

    return add


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(
    name: str,
    num_classes: int,
    *,
    pretrained_path: Path | None = None,
    say: Callable[[str], None] | None = None,
) -> nn.Module:
    """A new model; with `pretrained_path`, its backbone from that file (what was skipped goes
    to `say`)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    if num_classes < 1:
        raise ValueError("num_classes must be at least 1")
    model = _REGISTRY[name](num_classes)
    if pretrained_path is not None:
        loaded = load_backbone(model, pretrained_path)
        if say is not None:
            say(loaded.describe())
    return model


@dataclass(frozen=True)
class BackboneLoad:
    """What load_backbone took from a file, and what it left and why."""

    path: Path
    loaded: tuple[str, ...]
    skipped: dict[str, str]  # the file's tensors that were not loaded: why
    missing: tuple[str, ...]  # the model's tensors the file had nothing for (left as made)

    def describe(self) -> str:
        text = f"{self.path.name}: loaded {len(self.loaded)} tensors"
        if self.skipped:
            shown = "; ".join(f"{k} ({why})" for k, why in list(self.skipped.items())[:8])
            more = f" and {len(self.skipped) - 8} more" if len(self.skipped) > 8 else ""
            text += f", skipped {len(self.skipped)}: {shown}{more}"
        if self.missing:
            text += f"; {len(self.missing)} of the model's tensors are new: {', '.join(self.missing[:8])}"
        return text


def load_backbone(model: nn.Module, path: Path) -> BackboneLoad:
    """Load a local state dict, keeping the new classifier head (its shape differs). Returns
    what was loaded and what was skipped, so that a file of another architecture, or with
    renamed keys, is seen at once instead of training from scratch without a word."""
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = model.state_dict()
    usable: dict[str, torch.Tensor] = {}
    skipped: dict[str, str] = {}
    for key, value in state.items():
        if key not in own:
            skipped[key] = "not in this model"
        elif own[key].shape != value.shape:
            skipped[key] = f"shape {tuple(value.shape)}, the model's is {tuple(own[key].shape)}"
        else:
            usable[key] = value
    if not usable:
        raise ValueError(f"{path} holds no weights that fit this model")
    model.load_state_dict(usable, strict=False)
    missing = tuple(k for k in own if k not in usable)
    return BackboneLoad(path, tuple(usable), skipped, missing)


def _resnet_head(model: nn.Module, num_classes: int) -> nn.Module:
    fc = model.fc
    assert isinstance(fc, nn.Linear)
    model.fc = nn.Linear(fc.in_features, num_classes)
    return model


@register_model("resnet50")
def _resnet50(num_classes: int) -> nn.Module:
    return _resnet_head(resnet50(weights=None), num_classes)


@register_model("resnet18")
def _resnet18(num_classes: int) -> nn.Module:
    return _resnet_head(resnet18(weights=None), num_classes)


class SmallCNN(nn.Module):
    """Four conv blocks and a linear head: trains in minutes on a CPU, for demos and tests."""

    def __init__(self, num_classes: int, width: int = 16):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for i in range(4):
            out = width * 2**i
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(torch.flatten(self.pool(self.features(x)), 1))
        return out


@register_model("smallcnn")
def _smallcnn(num_classes: int) -> nn.Module:
    return SmallCNN(num_classes)
