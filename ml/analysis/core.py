"""The paper's pruning analysis (SPEC §3, Q1-Q4): pure functions, arrays in, dataclasses out.

Conventions (documented choices where the paper is silent):
- AP of a class without test positives is undefined (NaN); mAP averages the classes that have
  positives, and such classes have no forgettability curve.
- Frequencies are log10 of counts; a class with no training (or test) image is left out of the
  correlations (or pairs) that need its log.
- "First k below -20%": the smallest sparsity whose curve value is < -0.20; a class that never
  drops that far has None and is left out of that correlation (the count used is reported).
- First significant k: the smallest k > 0 whose Welch t-test against the dense mAPs has
  P < alpha (0.001) with a lower mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import numpy.typing as npt
import statsmodels.api as sm
from scipy import stats

from ml.metrics import mean_ap

Array = npt.NDArray[np.float64]
DROP = -0.20


@dataclass(frozen=True)
class Welch:
    k: float
    t: float | None
    p: float | None
    mean_dense: float
    mean_pruned: float


@dataclass(frozen=True)
class Overall:
    sparsities: tuple[float, ...]
    map_grid: Array  # [S, K]
    median_map: Array  # [K]
    welch: tuple[Welch, ...]
    alpha: float
    first_significant_k: float | None


def overall(ap: Array, sparsities: Sequence[float], alpha: float = 0.001) -> Overall:
    grid = mean_ap(ap)  # [S, K]
    median = np.median(grid, axis=0)
    tests = []
    first = None
    for ki, k in enumerate(sparsities):
        dense, pruned = grid[:, 0], grid[:, ki]
        t = p = None
        if ki > 0 and grid.shape[0] >= 2 and (np.ptp(dense) > 0 or np.ptp(pruned) > 0):
            res = stats.ttest_ind(dense, pruned, equal_var=False)
            t, p = float(res.statistic), float(res.pvalue)
            if first is None and p < alpha and pruned.mean() < dense.mean():
                first = float(k)
        tests.append(Welch(float(k), t, p, float(dense.mean()), float(pruned.mean())))
    return Overall(tuple(sparsities), grid, median, tuple(tests), alpha, first)


@dataclass(frozen=True)
class Correlation:
    n: int
    pearson_r: float | None
    pearson_p: float | None
    spearman_rho: float | None
    spearman_p: float | None


def correlate(x: Sequence[float], y: Sequence[float]) -> Correlation:
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[ok], ya[ok]
    if xa.size < 3 or np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return Correlation(int(xa.size), None, None, None, None)
    pr = stats.pearsonr(xa, ya)
    sr = stats.spearmanr(xa, ya)
    return Correlation(
        int(xa.size), float(pr.statistic), float(pr.pvalue), float(sr.statistic), float(sr.pvalue)
    )


@dataclass(frozen=True)
class ClassForgetting:
    name: str
    train_count: int
    test_count: int
    first_k_below: float | None
    value_at_max: float | None


@dataclass(frozen=True)
class Forgettability:
    curves: Array  # [K, C], NaN for classes without test positives
    classes: tuple[ClassForgetting, ...]
    max_k: float
    first_k_vs_freq: Correlation
    value_at_max_vs_freq: Correlation


def relative_ap(ap: Array) -> Array:
    """Each seed's relative change in AP against its dense model, [S, K, C] (NaN where the
    dense AP is undefined: no test positives)."""
    dense = ap[:, :1, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((ap - dense) / dense)


def forgettability(
    ap: Array, sparsities: Sequence[float], classes: Sequence[str],
    train_counts: Sequence[int], test_counts: Sequence[int],
) -> Forgettability:  # fmt: skip
    curves = np.median(relative_ap(ap), axis=0)  # [K, C]
    rows = []
    for ci, name in enumerate(classes):
        curve = curves[:, ci]
        if np.isnan(curve).all():
            first, last = None, None
        else:
            below = np.flatnonzero(curve < DROP)
            first = float(sparsities[below[0]]) if below.size else None
            last = float(curve[-1])
        rows.append(ClassForgetting(name, int(train_counts[ci]), int(test_counts[ci]), first, last))
    logf = [math.log10(r.train_count) if r.train_count > 0 else math.nan for r in rows]
    first_k = [r.first_k_below if r.first_k_below is not None else math.nan for r in rows]
    at_max = [r.value_at_max if r.value_at_max is not None else math.nan for r in rows]
    return Forgettability(
        curves,
        tuple(rows),
        float(sparsities[-1]),
        correlate(logf, first_k),
        correlate(logf, at_max),
    )


@dataclass(frozen=True)
class OlsFit:
    names: tuple[str, ...]
    coef: tuple[float, ...]
    se: tuple[float, ...]
    p: tuple[float, ...]
    r_squared: float
    n: int


@dataclass(frozen=True)
class Pairs:
    a: tuple[str, ...]
    b: tuple[str, ...]
    fcd: Array
    dlogfreq: Array
    iou: Array
    ols: OlsFit | None = field(default=None)

    @property
    def iou_quarter(self) -> Array:
        return np.asarray(self.iou**0.25)


def pairs(curves: Array, labels: npt.NDArray[np.uint8], classes: Sequence[str]) -> Pairs:
    """Every pair of classes with a curve and test positives: FCD, |dlog test freq|, IoU; OLS."""
    y = np.asarray(labels, dtype=bool)
    counts = y.sum(axis=0)
    usable = [c for c in range(len(classes)) if counts[c] > 0 and not np.isnan(curves[:, c]).any()]
    a, b, fcd, dlog, iou = [], [], [], [], []
    for i, j in combinations(usable, 2):
        a.append(classes[i])
        b.append(classes[j])
        fcd.append(float(np.mean((curves[:, i] - curves[:, j]) ** 2)))
        dlog.append(abs(math.log10(counts[i]) - math.log10(counts[j])))
        inter = int(np.sum(y[:, i] & y[:, j]))
        union = int(np.sum(y[:, i] | y[:, j]))
        iou.append(inter / union)
    result = Pairs(tuple(a), tuple(b), np.array(fcd), np.array(dlog), np.array(iou))
    return Pairs(result.a, result.b, result.fcd, result.dlogfreq, result.iou, fit_ols(result))


def fit_ols(p: Pairs) -> OlsFit | None:
    """FCD ~ |dlogfreq| + IoU^(1/4) + |dlogfreq| x IoU^(1/4)."""
    if p.fcd.size < 6:
        return None
    q = p.iou_quarter
    x = np.column_stack([p.dlogfreq, q, p.dlogfreq * q])
    fit = sm.OLS(p.fcd, sm.add_constant(x, has_constant="add")).fit()
    names = ("const", "dlogfreq", "iou_quarter", "dlogfreq:iou_quarter")
    return OlsFit(
        names, tuple(map(float, fit.params)), tuple(map(float, fit.bse)), tuple(map(float, fit.pvalues)),
        float(fit.rsquared), int(p.fcd.size),
    )  # fmt: skip


@dataclass(frozen=True)
class PieCharacteristics:
    classes: tuple[str, ...]
    class_ratio: Array  # prevalence among PIEs / among non-PIEs (NaN where non-PIEs have none)
    finding_bins: tuple[str, ...]  # "0", "1", "2", "3", "4+"
    bin_ratio: Array
    n_pies: int
    n_non_pies: int
    class_counts: Array  # [2, C]: positives among the PIEs, among the non-PIEs
    class_ci: Array  # [C, 2]: 95% interval of each ratio (NaN where the ratio is undefined)
    bin_counts: Array  # [2, 5]
    bin_ci: Array  # [5, 2]


Z95 = 1.959963984540054


def ratio_interval(a: Array, n1: int, c: Array, n2: int, z: float = Z95) -> Array:
    """The 95% interval of the prevalence ratio (a/n1) / (c/n2), Katz's log method, [.., 2].
    Where a is 0 (a ratio of 0), the interval runs from 0 to the upper bound with 0.5 added to a
    and c (Haldane-Anscombe); where c is 0 the ratio, and its interval, are undefined (NaN)."""
    a, c = np.asarray(a, dtype=float), np.asarray(c, dtype=float)
    zero = a == 0
    a2, c2 = np.where(zero, a + 0.5, a), np.where(zero, c + 0.5, c)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_ratio = np.log((a2 / n1) / (c2 / n2))
        se = np.sqrt(1 / a2 - 1 / n1 + 1 / c2 - 1 / n2)
        out = np.stack([np.exp(log_ratio - z * se), np.exp(log_ratio + z * se)], axis=-1)
    out[zero, 0] = 0.0
    out[c == 0] = np.nan
    return np.asarray(out)


def pie_characteristics(
    labels: npt.NDArray[np.uint8], is_pie: npt.NDArray[np.bool_], classes: Sequence[str],
    no_finding: str = "No Finding",
) -> PieCharacteristics:  # fmt: skip
    y = np.asarray(labels, dtype=float)
    pie, non = y[is_pie], y[~is_pie]
    if not len(pie) or not len(non):
        raise ValueError("need both PIEs and non-PIEs")
    n1, n2 = len(pie), len(non)
    class_counts = np.stack([pie.sum(axis=0), non.sum(axis=0)])
    with np.errstate(invalid="ignore", divide="ignore"):
        class_ratio = (class_counts[0] / n1) / (class_counts[1] / n2)
    finding_cols = [i for i, c in enumerate(classes) if c != no_finding]
    d = np.minimum(y[:, finding_cols].sum(axis=1), 4).astype(int)
    bins = ("0", "1", "2", "3", "4+")
    bin_counts = np.array(
        [[np.sum(d[is_pie] == b) for b in range(5)], [np.sum(d[~is_pie] == b) for b in range(5)]],
        dtype=float,
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        bin_ratio = (bin_counts[0] / n1) / (bin_counts[1] / n2)
    class_ratio[class_counts[1] == 0] = np.nan
    bin_ratio[bin_counts[1] == 0] = np.nan
    return PieCharacteristics(
        tuple(classes), class_ratio, bins, bin_ratio, int(is_pie.sum()), int((~is_pie).sum()),
        class_counts, ratio_interval(class_counts[0], n1, class_counts[1], n2),
        bin_counts, ratio_interval(bin_counts[0], n1, bin_counts[1], n2),
    )  # fmt: skip


def weight_histogram(
    weights: Sequence[npt.NDArray[np.float32]], bins: int = 60
) -> tuple[Array, Array]:
    """Counts of |w| in log-spaced bins (edges returned), zeros left out."""
    w = np.abs(np.concatenate([np.ravel(x) for x in weights])).astype(np.float64)
    w = w[w > 0]
    edges = np.logspace(np.log10(w.min()), np.log10(w.max()), bins + 1)
    counts, _ = np.histogram(w, bins=edges)
    return counts.astype(np.float64), edges
