"""Models by name (timm's habit): create_model("resnet50" | "resnet18" | "smallcnn", ...).

Nothing is downloaded: ImageNet weights come from a local file if the user has one (a torchvision
state dict); the classifier head is always new, sized to the label set.
"""

from __future__ import annotations

from collections.abc import Callable
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


def create_model(name: str, num_classes: int, *, pretrained_path: Path | None = None) -> nn.Module:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    if num_classes < 1:
        raise ValueError("num_classes must be at least 1")
    model = _REGISTRY[name](num_classes)
    if pretrained_path is not None:
        load_backbone(model, pretrained_path)
    return model


def load_backbone(model: nn.Module, path: Path) -> None:
    """Load a local state dict, keeping the new classifier head (its shape differs)."""
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError(f"{path} holds no weights that fit this model")
    model.load_state_dict(usable, strict=False)


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
