"""Vectorized average precision over every (seed, sparsity, class) at once.

AP equals ``sklearn.metrics.average_precision_score`` (ties included: each group of equal scores
is one threshold). A class without positives has no defined AP: the result is NaN, and mAP is
the mean over the classes that have positives. (sklearn returns 0.0 with a warning there;
counting such a class as 0 would drag every mAP down by a class that cannot be evaluated.)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

FloatArray = npt.NDArray[np.float64]


def average_precision(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, *, blocks: int = 6
) -> FloatArray:
    """AP for scores [..., N, C] against labels [N, C]; returns [..., C].

    Works through `blocks` leading indices (e.g. (seed, sparsity) pairs) at a time, so a
    memory-mapped store is read piecewise and never copied whole.
    """
    y = np.asarray(y_true)
    s = np.asarray(scores) if not isinstance(scores, np.ndarray) else scores
    if y.ndim != 2 or s.shape[-2:] != y.shape:
        raise ValueError(
            f"labels must be [N, C] and scores [..., N, C]; got {y.shape} and {s.shape}"
        )
    lead = s.shape[:-2]
    n, c = y.shape
    flat = s.reshape(-1, n, c)
    labels_int = torch.from_numpy(np.ascontiguousarray(y.T.astype(np.int32)))  # [C, N]
    positives = labels_int.sum(dim=1).double()  # [C]
    rank = torch.arange(1, n + 1, dtype=torch.float64)
    positions = torch.arange(n)
    out = np.empty((flat.shape[0], c), dtype=np.float64)
    for start in range(0, flat.shape[0], blocks):
        part = np.asarray(flat[start : start + blocks], dtype=np.float32)  # [b, N, C]
        rows = torch.from_numpy(np.ascontiguousarray(part.transpose(0, 2, 1))).reshape(
            -1, n
        )  # [b*C, N]
        cls = torch.arange(rows.shape[0]) % c
        # The order inside a group of equal scores does not change AP (its precision is read at
        # the group's end, its positives are summed), so an unstable sort is enough.
        order = torch.sort(rows, dim=1, descending=True)
        yv = labels_int[cls].gather(1, order.indices)  # labels in score order
        precision = torch.cumsum(yv, dim=1, dtype=torch.int32).double() / rank
        sv = order.values
        # the last element of each tie group is where that threshold's precision is taken
        boundary = torch.ones_like(sv, dtype=torch.bool)
        boundary[:, :-1] = sv[:, :-1] != sv[:, 1:]
        idx = torch.where(
            boundary, positions.expand_as(sv), torch.full_like(yv, n, dtype=torch.long)
        )
        group_end = torch.flip(torch.cummin(torch.flip(idx, [1]), dim=1).values, [1])
        ap = (yv * precision.gather(1, group_end)).sum(dim=1) / positives[cls]
        out[start : start + part.shape[0]] = ap.numpy().reshape(part.shape[0], c)
    result = np.where(y.sum(axis=0) > 0, out, np.nan).reshape(*lead, c)
    return np.asarray(result, dtype=np.float64)


def mean_ap(ap: npt.ArrayLike) -> FloatArray:
    """mAP over the last axis, ignoring classes without positives (NaN)."""
    return np.asarray(np.nanmean(np.asarray(ap, dtype=np.float64), axis=-1))
