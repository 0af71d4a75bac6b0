"""Models by name. The registry imports torch, so it is loaded on first use: importing
`ml.models.names` (the names alone) stays cheap."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ml.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from ml.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'ml.models' has no attribute {name!r}")
