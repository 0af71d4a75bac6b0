"""PIE scores and PIE sets (SPEC §2.3-2.4).

The PIE score of image n is the Spearman rank correlation, across the C classes, between the
seed-averaged predictions of the dense models (k = 0) and of the models pruned at k* (0.90 by
default). Ties get average ranks, as pandas ``DataFrame.corrwith(other, axis=1,
method="spearman")``. A row that is constant in either model has no defined correlation: its
score is NaN, it is reported in ``undefined`` and never ranked or called a PIE. Other measures
of the same two vectors (ml.measures: Kendall's tau, L1 and Jensen-Shannon distances, decision
flips) can replace Spearman's; each is oriented so that lower means more forgotten.

PIEs: the images whose score is at or below the q-th percentile (numpy's linear interpolation,
q = 5 by default) of the defined scores.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ml.fileio import atomic_write
from ml.measures import DESCRIPTIONS, agreement_score
from ml.pieset_file import score_ranks

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PieScores:
    scores: FloatArray  # [N], NaN where undefined
    k_star: float
    measure: str = "spearman"

    @property
    def undefined(self) -> npt.NDArray[np.bool_]:
        return np.isnan(self.scores)


def pie_scores(
    predictions: npt.ArrayLike, sparsities: Sequence[float], k_star: float = 0.9,
    measure: str = "spearman",
) -> PieScores:  # fmt: skip
    """PIE scores from predictions P[S, K, N, C] at the given sparsities (which include 0)."""
    p = np.asarray(predictions)
    if p.ndim != 4:
        raise ValueError(f"predictions must be [S, K, N, C], got shape {p.shape}")
    index = {round(k, 6): i for i, k in enumerate(sparsities)}
    for k in (0.0, k_star):
        if round(k, 6) not in index:
            raise ValueError(f"sparsity {k} is not among the stored sparsities {list(sparsities)}")
    dense = p[:, index[0.0]].astype(np.float64).mean(axis=0)
    pruned = p[:, index[round(k_star, 6)]].astype(np.float64).mean(axis=0)
    return PieScores(agreement_score(measure, dense, pruned), k_star, measure)


@dataclass(frozen=True)
class PieSetResult:
    image_ids: tuple[str, ...]
    scores: FloatArray
    is_pie: npt.NDArray[np.bool_]
    ranks: npt.NDArray[np.int64]  # 1 = lowest score; 0 where the score is undefined
    threshold: float
    percentile: float
    k_star: float
    measure: str = "spearman"

    @property
    def undefined_ids(self) -> list[str]:
        return [i for i, s in zip(self.image_ids, self.scores, strict=True) if math.isnan(s)]

    def summary(self) -> dict[str, Any]:
        defined = self.scores[~np.isnan(self.scores)]
        return {
            "images": len(self.image_ids),
            "pies": int(self.is_pie.sum()),
            "non_pies": int((~self.is_pie).sum()),
            "k_star": self.k_star,
            "measure": self.measure,
            "measure_description": DESCRIPTIONS[self.measure],
            "percentile": self.percentile,
            "threshold": self.threshold,
            "undefined_scores": len(self.undefined_ids),
            "undefined_images": self.undefined_ids[:100],
            "score_quantiles": {
                str(q): float(np.percentile(defined, q)) for q in (0, 5, 25, 50, 75, 100)
            }
            if defined.size
            else {},
        }


def find_pies(scores: PieScores, image_ids: Sequence[str], percentile: float = 5.0) -> PieSetResult:
    if not 0.0 < percentile < 100.0:
        raise ValueError(f"percentile must lie strictly between 0 and 100, got {percentile}")
    if len(image_ids) != scores.scores.size:
        raise ValueError(f"{len(image_ids)} image ids for {scores.scores.size} scores")
    defined = ~np.isnan(scores.scores)
    if not defined.any():
        raise ValueError("no image has a defined PIE score (every prediction row is constant)")
    threshold = float(np.percentile(scores.scores[defined], percentile))
    is_pie = defined & (np.nan_to_num(scores.scores, nan=np.inf) <= threshold)
    if is_pie.sum() == defined.sum():
        raise ValueError(
            f"every defined {scores.measure} score is {threshold:.6g}, so every image is at the "
            f"{percentile:g}th percentile and none stands out: the pruned models changed every "
            "image's predictions alike (a model that learnt only the class frequencies does "
            "this); try another measure (l1, jensen-shannon) or a model that learnt more"
        )
    ranks = np.array(
        [k or 0 for k in score_ranks(image_ids, scores.scores.tolist())], dtype=np.int64
    )
    return PieSetResult(
        tuple(image_ids), scores.scores, is_pie, ranks, threshold, percentile, scores.k_star,
        scores.measure,
    )  # fmt: skip


def write_pie_set(
    result: PieSetResult, csv_path: Path, extra_summary: dict[str, Any] | None = None
) -> Path:
    """Write image,is_pie,score,rank (what `piestudy pieset import` reads) and a JSON summary
    beside it; each file is written to a temporary name and renamed, so none is half-written."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", "is_pie", "score", "rank"])
    rows = zip(result.image_ids, result.is_pie, result.scores, result.ranks, strict=True)
    for image, pie, score, rank in rows:
        text = "" if math.isnan(score) else repr(float(score))
        writer.writerow([image, int(pie), text, int(rank) or ""])
    atomic_write(csv_path, buffer.getvalue())
    summary_path = csv_path.with_suffix(".json")
    summary = {**result.summary(), **(extra_summary or {})}
    atomic_write(summary_path, json.dumps(summary, indent=2))
    return summary_path
