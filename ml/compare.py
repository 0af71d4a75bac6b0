"""Two or more PIE sets or prediction stores side by side.

Each item is a prediction store (its PIE scores computed here, at a k*, measure and percentile
of its own) or a PIE set file (image,is_pie,score[,rank]). Every pair gets the overlap of its PIE
sets over the images both scored (Jaccard: |A and B| / |A or B|) and the Spearman and Pearson
correlations of their scores there; stores also give their forgettability curves (the median
relative change in AP per class, and the median mAP), overlaid in one figure. For example:
plain L1 against Global MP's per-layer minimum (two stores), or k* = 0.8 against 0.9 (one store
twice).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from ml.fileio import atomic_write
from ml.pieset_file import parse_pieset_csv
from ml.store import PredictionStore

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Item:
    """One side of a comparison: its PIE scores and, for a store, its curves."""

    label: str
    image_ids: tuple[str, ...]
    scores: Array  # NaN: undefined
    is_pie: npt.NDArray[np.bool_]
    sparsities: tuple[float, ...] = ()
    classes: tuple[str, ...] = ()
    curves: Array | None = None  # [K, C] median relative change in AP
    median_map: Array | None = None  # [K]


def store_curves(store: PredictionStore) -> dict[str, Any]:
    """A store's forgettability curves: Item's sparsities, classes, curves and median_map."""
    from ml.analysis.core import relative_ap
    from ml.metrics import average_precision, mean_ap

    ap = average_precision(np.asarray(store.labels), store.predictions)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN classes: no test positives
        curves = np.nanmedian(relative_ap(ap), axis=0)
        median_map = np.median(mean_ap(ap), axis=0)
    return {"sparsities": store.meta.sparsities, "classes": store.meta.classes,
            "curves": curves, "median_map": median_map}  # fmt: skip


def from_store(
    path: Path, *, k_star: float = 0.9, measure: str = "spearman", percentile: float = 5.0,
    label: str | None = None,
) -> Item:  # fmt: skip
    from ml.pies import find_pies, pie_scores

    store = PredictionStore.open(path)
    m = store.meta
    pies = find_pies(
        pie_scores(store.predictions, m.sparsities, k_star, measure), m.image_ids, percentile
    )
    method, keep = m.pruning.get("method", "?"), m.pruning.get("min_keep", 0)
    name = label or f"{path.name} ({method}, min_keep {keep:g}, {measure} k*={k_star:g})"
    return Item(
        name, m.image_ids, pies.scores.astype(np.float64), pies.is_pie, **store_curves(store)
    )


def from_pies_csv(path: Path, label: str | None = None) -> Item:
    parsed = parse_pieset_csv(path.read_text(encoding="utf-8"), path.name)
    if parsed.problems:
        first = parsed.problems[0]
        raise ValueError(f"{path}: line {first.line}: {first.message}")
    rows = parsed.rows
    scores = np.array([math.nan if r.score is None else r.score for r in rows], dtype=np.float64)
    return Item(
        label or path.name, tuple(r.image for r in rows), scores,
        np.array([r.is_pie for r in rows], dtype=bool),
    )  # fmt: skip


def pair(a: Item, b: Item) -> dict[str, Any]:
    """Overlap and score agreement of two items over the images both have."""
    index = {image: i for i, image in enumerate(b.image_ids)}
    common = [(i, index[image]) for i, image in enumerate(a.image_ids) if image in index]
    if not common:
        raise ValueError(f"{a.label} and {b.label} share no image")
    ia, ib = (np.array(x, dtype=np.int64) for x in zip(*common, strict=True))
    pa, pb = a.is_pie[ia], b.is_pie[ib]
    union = int((pa | pb).sum())
    sa, sb = a.scores[ia], b.scores[ib]
    both = ~np.isnan(sa) & ~np.isnan(sb)
    out: dict[str, Any] = {
        "a": a.label, "b": b.label, "common_images": len(common),
        "pies_a": int(pa.sum()), "pies_b": int(pb.sum()), "pies_both": int((pa & pb).sum()),
        "jaccard": (pa & pb).sum() / union if union else None,
        "scored_both": int(both.sum()), "spearman": None, "spearman_p": None, "pearson": None,
    }  # fmt: skip
    if both.sum() >= 3 and np.ptp(sa[both]) > 0 and np.ptp(sb[both]) > 0:
        rho = stats.spearmanr(sa[both], sb[both])
        out |= {"spearman": float(rho.statistic), "spearman_p": float(rho.pvalue),
                "pearson": float(np.corrcoef(sa[both], sb[both])[0, 1])}  # fmt: skip
    return out


def compare(items: Sequence[Item]) -> dict[str, Any]:
    if len(items) < 2:
        raise ValueError("give two or more PIE sets or stores to compare")
    labels = [it.label for it in items]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two items have one label: {labels}; name them apart")
    return {
        "items": [
            {"label": it.label, "images": len(it.image_ids), "pies": int(it.is_pie.sum()),
             "has_curves": it.curves is not None}
            for it in items
        ],
        "pairs": [pair(a, b) for a, b in itertools.combinations(items, 2)],
        "curves": {
            it.label: {
                "sparsities": list(it.sparsities),
                "median_map": [float(v) for v in it.median_map] if it.median_map is not None else None,
                "classes": {c: [None if math.isnan(v) else float(v) for v in it.curves[:, ci]]
                            for ci, c in enumerate(it.classes)},
            }
            for it in items if it.curves is not None
        },
    }  # fmt: skip


def write_comparison(result: dict[str, Any], out: Path) -> list[Path]:
    """out/comparison.json, out/pairs.csv and, where two or more stores have curves,
    out/curves.png|svg (the curves overlaid; the numbers are in comparison.json)."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "comparison.json", out / "pairs.csv"]
    atomic_write(written[0], json.dumps(result, indent=1))
    buffer = io.StringIO()
    fields = list(result["pairs"][0])
    writer = csv.DictWriter(buffer, fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(result["pairs"])
    atomic_write(written[1], buffer.getvalue())
    if result["curves"]:
        from ml.analysis.figures import overlaid_curves

        written += overlaid_curves(result["curves"], out)
    return written
