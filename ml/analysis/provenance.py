"""Where an analysis comes from: the data, the models, the pruning, the PIE score, the software.

Every report and analysis.json carries it, and its one-line headline tells two reports of
different settings apart at a glance (plain L1 against Global MP's minimum, Spearman against
L1 scores, k* = 0.8 against 0.9, pretrained or not).
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

from ml.store import PredictionStore

LIBRARIES = (
    "piestudy", "torch", "torchvision", "numpy", "scipy", "scikit-learn", "statsmodels", "matplotlib",
)  # fmt: skip
NOT_RECORDED = "not recorded"


def software_versions(names: Sequence[str] = LIBRARIES) -> dict[str, str]:
    out = {"Python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # a source checkout run without installing
            out[name] = "not installed"
    return out


def _pretrained(model: Mapping[str, Any]) -> str:
    for key in ("pretrained", "pretrained_path"):
        if key in model:
            value = model[key]
            return (
                f"yes: {str(value).rsplit('/', 1)[-1]}" if value else "no (random initialisation)"
            )
    return NOT_RECORDED


def _epochs(model: Mapping[str, Any]) -> str:
    run = model.get("epochs_run")
    if not run:
        return NOT_RECORDED
    values = sorted(int(v) for v in run.values())
    span = f"{values[0]}" if values[0] == values[-1] else f"{values[0]}-{values[-1]}"
    limit = model.get("max_epochs")
    return f"{span} per seed" + (f" (at most {limit}, early stopping)" if limit else "")


def provenance(
    store: PredictionStore, *, measure: str, k_star: float, percentile: float, alpha: float,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The analysis's provenance, from the store's manifest and the analysis's own settings;
    `extra` (a run's id, split sizes the store does not know) is merged in."""
    m = store.meta
    model = m.model
    sizes: dict[str, int] = {**m.notes.get("split_sizes", {}), "test": len(m.image_ids)}
    out: dict[str, Any] = {
        "run_id": None,
        "dataset": m.dataset,
        "split_sizes": sizes,
        "classes": len(m.classes),
        "model": {
            "name": model.get("name") or model.get("model") or NOT_RECORDED,
            "pretrained": _pretrained(model),
            "image_size": model.get("image_size"),
            "epochs": _epochs(model),
            **{k: model[k] for k in ("batch_size", "lr", "patience") if k in model},
        },
        "seeds": list(m.seeds),
        "pruning": {
            "method": m.pruning.get("method", NOT_RECORDED),
            "min_keep": m.pruning.get("min_keep", 0.0),
            "scope": m.pruning.get("scope", NOT_RECORDED),
            "sparsities": len(m.sparsities),
        },
        "pie_score": {"measure": measure, "k_star": k_star, "percentile": percentile},
        "alpha": alpha,
        "store": str(store.path),
        "software": software_versions(),
    }
    for key, value in (extra or {}).items():
        if key == "split_sizes":
            out["split_sizes"] = {**value, **out["split_sizes"]}
        else:
            out[key] = value
    return out


def headline(p: Mapping[str, Any]) -> str:
    """The settings in one line: what tells two reports apart."""
    model, pruning, score = p["model"], p["pruning"], p["pie_score"]
    method = {"l1": "global L1", "random": "random"}.get(pruning["method"], pruning["method"])
    keep = f", every layer keeps {pruning['min_keep']:.4%}" if pruning["min_keep"] else ""
    pretrained = str(model["pretrained"])
    init = "pretrained" if pretrained.startswith("yes") else "from scratch"
    if pretrained == NOT_RECORDED:
        init = "initialisation not recorded"
    run = f"run {p['run_id']} · " if p.get("run_id") is not None else ""
    return (
        f"{run}{model['name']} ({init}), {len(p['seeds'])} seeds · {method} pruning{keep} · "
        f"{score['measure']} PIE score at k* = {score['k_star']:g}, "
        f"{score['percentile']:g}th percentile"
    )
