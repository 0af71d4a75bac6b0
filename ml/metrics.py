"""Vectorized average precision over every (seed, sparsity, class) at once.

AP equals ``sklearn.metrics.average_precision_score`` (ties included: each group of equal scores
is one threshold). A class without positives has no defined AP: the result is NaN, and mAP is
the mean over the classes that have positives. (sklearn returns 0.0 with a warning there;
counting such a class as 0 would drag every mAP down by a class that cannot be evaluated.)
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
import torch

FloatArray = npt.NDArray[np.float64]


def average_precision(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, *, blocks: int = 20
) -> FloatArray:
    """AP for scores [..., N, C] against labels [N, C]; returns [..., C].

    For a positive with score s, sklearn's precision at that threshold is
    tp(>= s) / count(>= s) (the tie group of s counts whole). Both counts come from binary
    searches in value-sorted arrays, so no argsort is needed: values are sorted with numpy's
    SIMD sort and searched in batches. AP is the mean of that precision over the positives.
    The leading indices (e.g. (seed, sparsity)) are taken `blocks` at a time, so a memory-mapped
    store is read piecewise and never copied whole.
    """
    y = np.asarray(y_true)
    s = scores if isinstance(scores, np.ndarray) else np.asarray(scores)
    if y.ndim != 2 or s.shape[-2:] != y.shape:
        raise ValueError(
            f"labels must be [N, C] and scores [..., N, C]; got {y.shape} and {s.shape}"
        )
    lead = s.shape[:-2]
    n, c = y.shape
    flat = s.reshape(-1, n, c)
    positives = [np.flatnonzero(y[:, k]) for k in range(c)]
    out = np.full((flat.shape[0], c), np.nan)

    def run(start: int) -> None:
        part = np.ascontiguousarray(
            np.asarray(flat[start : start + blocks], dtype=np.float32).transpose(0, 2, 1)
        )
        everything = torch.from_numpy(np.sort(part, axis=2))  # [b, C, N]
        for k in range(c):
            pos = positives[k]
            if pos.size == 0:
                continue
            pos_sorted = np.ascontiguousarray(np.sort(part[:, k, pos], axis=1))  # [b, P] ascending
            below = torch.searchsorted(
                everything[:, k].contiguous(), torch.from_numpy(pos_sorted), side="left"
            )
            count_ge = (n - below).numpy()
            # tp(>= s) = P - (first index of s among the sorted positives): tie-group starts
            starts = np.ones(pos_sorted.shape, dtype=bool)
            starts[:, 1:] = pos_sorted[:, 1:] != pos_sorted[:, :-1]
            first = np.maximum.accumulate(np.where(starts, np.arange(pos.size), 0), axis=1)
            tp_ge = pos.size - first
            out[start : start + part.shape[0], k] = (tp_ge / count_ge).sum(axis=1) / pos.size

    # Blocks are independent and numpy's sort releases the GIL: use every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(run, range(0, flat.shape[0], blocks)))
    return np.asarray(out.reshape(*lead, c), dtype=np.float64)


def mean_ap(ap: npt.ArrayLike) -> FloatArray:
    """mAP over the last axis, ignoring classes without positives (NaN)."""
    return np.asarray(np.nanmean(np.asarray(ap, dtype=np.float64), axis=-1))
