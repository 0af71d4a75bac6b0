"""Reader-study statistics: pure functions, numpy arrays in, frozen dataclasses out.

Kruskal-Wallis H is tie-corrected and equals scipy.stats.kruskal. One documented difference: when
groups have identical rank sums, H is exactly 0; floating point can put it slightly below 0 (about -1e-13), where
scipy reports P = NaN. H cannot be negative, so it is clamped at 0 here, and P = 1. The paper's
effect size is epsilon squared, E2 = H / ((n^2 - 1) / (n + 1)) = H / (n - 1) (Tomczak & Tomczak
2014). It is reported without an interval: it cannot be negative, so an interval for it never
holds 0, whatever the data (on 200 simulated studies without any effect, a bootstrap interval
excluded 0 every time). The signed effect size with a valid interval is in clustered.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
MIN_PER_GROUP = 2


class StatisticUndefinedError(ValueError):
    """The test cannot be computed on these data; the message says why."""


@dataclass(frozen=True)
class GroupSummary:
    n: int
    mean: float | None
    sd: float | None  # sample SD (ddof=1); None below 2 values
    median: float | None
    percent_yes: float | None  # yes/no questions only


@dataclass(frozen=True)
class KruskalWallis:
    h: float
    df: int
    p: float


@dataclass(frozen=True)
class Comparison:
    pie: GroupSummary
    non_pie: GroupSummary
    test: KruskalWallis | None
    epsilon_squared: float | None
    note: str | None  # why the test or the interval could not be computed


def summarize(values: Array, *, binary: bool) -> GroupSummary:
    v = np.asarray(values, dtype=np.float64)
    n = int(v.size)
    if n == 0:
        return GroupSummary(0, None, None, None, None)
    return GroupSummary(
        n=n,
        mean=float(v.mean()),
        sd=float(v.std(ddof=1)) if n >= 2 else None,
        median=float(np.median(v)),
        percent_yes=float(100.0 * v.mean()) if binary else None,
    )


def kruskal_wallis(groups: Sequence[Array]) -> KruskalWallis:
    """Tie-corrected Kruskal-Wallis H test over two or more groups."""
    arrays = [np.asarray(g, dtype=np.float64) for g in groups]
    if len(arrays) < 2:
        raise StatisticUndefinedError("the test needs at least two groups")
    sizes = [a.size for a in arrays]
    if min(sizes) < 1:
        raise StatisticUndefinedError("every group needs at least one value")
    data = np.concatenate(arrays)
    n = data.size
    # Imported here: scipy takes seconds to import, and the server starts without it.
    from scipy.stats import rankdata

    ranks = rankdata(data)
    _, counts = np.unique(data, return_counts=True)
    correction = 1.0 - float(np.sum(counts.astype(np.float64) ** 3 - counts)) / (n**3 - n)
    if correction <= 0:
        raise StatisticUndefinedError(
            f"all {n} values are equal ({data[0]:g}); the test is undefined"
        )
    bounds = np.cumsum([0, *sizes])
    rank_sums = np.array([ranks[bounds[i] : bounds[i + 1]].sum() for i in range(len(arrays))])
    h = (
        12.0 / (n * (n + 1)) * float(np.sum(rank_sums**2 / np.array(sizes))) - 3.0 * (n + 1)
    ) / correction
    h = max(float(h), 0.0)  # rounding can give about -1e-13 when the rank sums agree exactly
    df = len(arrays) - 1
    from scipy.stats import chi2

    return KruskalWallis(h=h, df=df, p=float(chi2.sf(h, df)))


def epsilon_squared(h: float, n: int) -> float:
    return float(h / ((n**2 - 1) / (n + 1)))


def compare(pie: Array, non_pie: Array, *, binary: bool) -> Comparison:
    """PIE vs non-PIE for one question, every answer pooled: summaries, Kruskal-Wallis and
    epsilon squared (the paper's analysis; backend.stats.clustered has the reader-aware one)."""
    pie = np.asarray(pie, dtype=np.float64)
    non_pie = np.asarray(non_pie, dtype=np.float64)
    sp, sn = summarize(pie, binary=binary), summarize(non_pie, binary=binary)
    if pie.size < MIN_PER_GROUP or non_pie.size < MIN_PER_GROUP:
        too_few = (
            f"the test needs at least {MIN_PER_GROUP} answers in each group "
            f"(PIE has {pie.size}, non-PIE has {non_pie.size})"
        )
        return Comparison(sp, sn, None, None, too_few)
    try:
        test = kruskal_wallis([pie, non_pie])
    except StatisticUndefinedError as exc:
        return Comparison(sp, sn, None, None, str(exc))
    return Comparison(sp, sn, test, epsilon_squared(test.h, pie.size + non_pie.size), None)
