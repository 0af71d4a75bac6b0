"""How far a pruned population's predictions for an image moved from the dense one's.

Each measure compares, row by row, the seed-averaged prediction vectors of the dense models and
of the models pruned at k* ([N, C] each) and gives a score oriented as an agreement: the lower
the score, the more the pruned models forgot the image, so that every measure ranks and
thresholds PIEs the same way (SPEC §2.4: at or below the q-th percentile). Distances enter
negated.

- ``spearman`` (the paper's, the default): Spearman's rho across the classes.
- ``kendall``: Kendall's tau-b across the classes (scipy.stats.kendalltau's tau-b).
- ``l1``: minus the L1 ("taxicab") distance of the two mean prediction vectors, the measure of
  Hooker et al.'s compression-identified exemplars.
- ``jensen-shannon``: minus the Jensen-Shannon distance (base 2, in [0, 1]) of the two vectors
  each scaled to sum to 1 (scipy.spatial.distance.jensenshannon).
- ``flips``: minus the number of classes whose decision at a probability of 0.5 differs.

A score is NaN where the measure is undefined for the row (a constant row for the rank
correlations, a vector summing to 0 for Jensen-Shannon). Plain numpy, no torch: the CLI, the
run parameters and the schemas import it cheaply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Measure = Literal["spearman", "kendall", "l1", "jensen-shannon", "flips"]
MEASURES: tuple[str, ...] = get_args(Measure)
FLIP_THRESHOLD = 0.5
DESCRIPTIONS: dict[str, str] = {
    "spearman": "Spearman's rho of the dense and pruned mean predictions across the classes",
    "kendall": "Kendall's tau-b of the dense and pruned mean predictions across the classes",
    "l1": "minus the L1 distance of the dense and pruned mean prediction vectors",
    "jensen-shannon": "minus the Jensen-Shannon distance (base 2) of the dense and pruned mean "
    "prediction vectors, each scaled to sum to 1",
    "flips": f"minus the number of classes whose decision at p >= {FLIP_THRESHOLD:g} differs "
    "between the dense and pruned mean predictions",
}


def _pair(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"need two [N, C] arrays of the same shape, got {x.shape} and {y.shape}")
    return x, y


def rowwise_spearman(a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
    """Spearman correlation of each row of a with the same row of b (NaN for constant rows),
    with average ranks for ties, as pandas ``corrwith(axis=1, method="spearman")``."""
    from scipy.stats import rankdata

    x, y = _pair(a, b)
    # one ranking call for both; average ranks of a row always sum to C(C+1)/2, so centring
    # subtracts the constant (C+1)/2
    ranks = rankdata(np.concatenate([x, y]), axis=1) - (x.shape[1] + 1) / 2.0
    rx, ry = ranks[: len(x)], ranks[len(x) :]
    num = np.einsum("nc,nc->n", rx, ry)
    den = np.sqrt(np.einsum("nc,nc->n", rx, rx) * np.einsum("nc,nc->n", ry, ry))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[den == 0] = np.nan
    return np.asarray(out, dtype=np.float64)


def rowwise_kendall(a: npt.ArrayLike, b: npt.ArrayLike, *, chunk: int = 4096) -> FloatArray:
    """Kendall's tau-b of each row of a with the same row of b (NaN for constant rows): over
    the C(C-1)/2 class pairs, (concordant - discordant) / sqrt((pairs - ties in a) x (pairs -
    ties in b)). Vectorised over rows, `chunk` rows at a time (memory: chunk x C^2 / 2)."""
    x, y = _pair(a, b)
    i, j = np.triu_indices(x.shape[1], k=1)
    out = np.empty(len(x))
    for start in range(0, len(x), chunk):
        sx = np.sign(x[start : start + chunk, j] - x[start : start + chunk, i])
        sy = np.sign(y[start : start + chunk, j] - y[start : start + chunk, i])
        num = np.einsum("np,np->n", sx, sy)
        den = np.sqrt(np.abs(sx).sum(axis=1) * np.abs(sy).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            part = num / den
        part[den == 0] = np.nan
        out[start : start + chunk] = part
    return out


def l1_distance(a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
    x, y = _pair(a, b)
    return np.asarray(np.abs(x - y).sum(axis=1), dtype=np.float64)


def jensen_shannon_distance(a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
    """Row-wise Jensen-Shannon distance, base 2, of the rows scaled to sum to 1 (NaN where a
    row sums to 0 or holds a negative value)."""
    x, y = _pair(a, b)
    sx, sy = x.sum(axis=1, keepdims=True), y.sum(axis=1, keepdims=True)
    bad = (sx[:, 0] <= 0) | (sy[:, 0] <= 0) | (x < 0).any(axis=1) | (y < 0).any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p, q = x / sx, y / sy
        m = (p + q) / 2

        def kl(u: FloatArray) -> FloatArray:  # sum u log2(u / m), with 0 log 0 = 0
            return np.asarray(np.where(u > 0, u * np.log2(u / m), 0.0).sum(axis=1))

        js = np.sqrt(np.maximum((kl(p) + kl(q)) / 2, 0.0))
    js[bad] = np.nan
    return np.asarray(js, dtype=np.float64)


def decision_flips(
    a: npt.ArrayLike, b: npt.ArrayLike, threshold: float = FLIP_THRESHOLD
) -> FloatArray:
    """The number of classes whose decision (p >= threshold) differs between the rows."""
    x, y = _pair(a, b)
    return np.asarray(((x >= threshold) != (y >= threshold)).sum(axis=1), dtype=np.float64)


SCORES: dict[str, Callable[[FloatArray, FloatArray], FloatArray]] = {
    "spearman": rowwise_spearman,
    "kendall": rowwise_kendall,
    "l1": lambda a, b: -l1_distance(a, b),
    "jensen-shannon": lambda a, b: -jensen_shannon_distance(a, b),
    "flips": lambda a, b: -decision_flips(a, b),
}


def agreement_score(measure: str, dense: npt.ArrayLike, pruned: npt.ArrayLike) -> FloatArray:
    """The PIE score of each row under `measure`, oriented so that lower means more forgotten."""
    if measure not in SCORES:
        raise ValueError(f"unknown measure {measure!r}: one of {', '.join(MEASURES)}")
    x, y = _pair(dense, pruned)
    return np.asarray(SCORES[measure](x, y), dtype=np.float64)
