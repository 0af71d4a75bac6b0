"""The names of the registered models, importable without torch (schemas, the CLI, the pages).
tests/ml check that the registry (ml.models.registry) registers exactly these."""

from __future__ import annotations

from typing import Literal, get_args

ModelName = Literal["smallcnn", "resnet18", "resnet50"]
MODEL_NAMES: tuple[str, ...] = get_args(ModelName)
