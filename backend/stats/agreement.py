"""Agreement between readers on the overlap cases (read by every reader): pure functions.

A ratings matrix is cases x readers, NaN where a reader has not answered. Computed by
well-kept libraries where they exist, each with a 95% interval:

- Fleiss' kappa for agreement (yes/no), statsmodels, on the cases every reader answered;
- quadratic-weighted Cohen's kappa for each pair of readers (1-5 scales), scikit-learn, on the
  cases both answered;
- Krippendorff's alpha, ordinal, for the 1-5 scales (the `krippendorff` package; it takes
  missing answers);
- ICC(2,1), two-way random effects, absolute agreement, one reader (Shrout & Fleiss), on the
  cases every reader answered, with its F-based interval (McGraw & Wong); cross-checked against
  pingouin in the tests.

The kappa and alpha intervals are percentile bootstraps over cases (seeded): the cases are the
sample, the readers fixed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float64]
RESAMPLES = 1000
MIN_CASES = 5


@dataclass(frozen=True)
class Estimate:
    method: str
    value: float
    ci: tuple[float, float] | None
    cases: int


@dataclass(frozen=True)
class PairKappa:
    reader_a: int
    reader_b: int
    estimate: Estimate


def _complete(ratings: Matrix) -> Matrix:
    return ratings[~np.isnan(ratings).any(axis=1)]


def _bootstrap(
    data: Matrix, statistic: Callable[[Matrix], float], resamples: int, seed: int
) -> tuple[float, float] | None:
    rng = np.random.default_rng(seed)
    values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a resample with one value left: undefined, skipped
        for _ in range(resamples):
            v = statistic(data[rng.integers(0, len(data), len(data))])
            if np.isfinite(v):
                values.append(v)
    if len(values) < resamples // 2:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def _fleiss(data: Matrix) -> float:
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    table, _ = aggregate_raters(data.astype(np.int64))
    return float(fleiss_kappa(table, method="fleiss"))


def fleiss_kappa(ratings: Matrix, *, resamples: int = RESAMPLES, seed: int = 0) -> Estimate | None:
    """Fleiss' kappa over the cases every reader answered; None below MIN_CASES of them, or
    where every answer is the same (kappa is undefined)."""
    data = _complete(ratings)
    if len(data) < MIN_CASES or ratings.shape[1] < 2 or np.ptp(data) == 0:
        return None
    return Estimate(
        "Fleiss' kappa (statsmodels), bootstrap over cases", _fleiss(data),
        _bootstrap(data, _fleiss, resamples, seed), len(data),
    )  # fmt: skip


def _weighted_kappa(pair: Matrix) -> float:
    from sklearn.metrics import cohen_kappa_score

    return float(
        cohen_kappa_score(pair[:, 0], pair[:, 1], weights="quadratic", labels=[1, 2, 3, 4, 5])
    )


def pairwise_weighted_kappa(
    ratings: Matrix, readers: list[int], *, resamples: int = RESAMPLES, seed: int = 0
) -> list[PairKappa]:
    """Quadratic-weighted Cohen's kappa for each pair of readers, on the cases both answered."""
    out = []
    for i in range(len(readers)):
        for j in range(i + 1, len(readers)):
            pair = _complete(ratings[:, [i, j]])
            if len(pair) < MIN_CASES or np.ptp(pair) == 0:
                continue
            value = _weighted_kappa(pair)
            if not np.isfinite(value):
                continue
            out.append(
                PairKappa(
                    readers[i],
                    readers[j],
                    Estimate(
                        "Cohen's kappa, quadratic weights (scikit-learn), bootstrap over cases",
                        value,
                        _bootstrap(pair, _weighted_kappa, resamples, seed),
                        len(pair),
                    ),
                )
            )
    return out


def _alpha(data: Matrix) -> float:
    import krippendorff

    return float(
        krippendorff.alpha(
            reliability_data=data.T, level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5]
        )
    )


def krippendorff_alpha(
    ratings: Matrix, *, resamples: int = RESAMPLES, seed: int = 0
) -> Estimate | None:
    """Ordinal Krippendorff's alpha over the cases with two answers or more (missing allowed)."""
    data = ratings[(~np.isnan(ratings)).sum(axis=1) >= 2]
    if len(data) < MIN_CASES or np.nanmax(data) == np.nanmin(data):
        return None
    return Estimate(
        "Krippendorff's alpha, ordinal (krippendorff), bootstrap over cases", _alpha(data),
        _bootstrap(data, _alpha, resamples, seed), len(data),
    )  # fmt: skip


def icc_2_1(ratings: Matrix) -> Estimate | None:
    """ICC(2,1) with its F-based 95% interval, over the cases every reader answered."""
    from scipy.stats import f

    x = _complete(ratings)
    n, k = x.shape
    if n < MIN_CASES or k < 2 or np.ptp(x) == 0:
        return None
    grand = x.mean()
    ss_rows = k * np.sum((x.mean(axis=1) - grand) ** 2)
    ss_cols = n * np.sum((x.mean(axis=0) - grand) ** 2)
    ss_error = np.sum((x - grand) ** 2) - ss_rows - ss_cols
    msr, msc = ss_rows / (n - 1), ss_cols / (k - 1)
    mse = ss_error / ((n - 1) * (k - 1))
    icc = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    # McGraw & Wong (1996), case 2A: the interval for absolute agreement
    a = k * icc / (n * (1 - icc))
    b = 1 + k * icc * (n - 1) / (n * (1 - icc))
    v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / (k - 1) + (b * mse) ** 2 / ((n - 1) * (k - 1)))
    f_low = f.ppf(0.975, n - 1, v)
    f_high = f.ppf(0.975, v, n - 1)
    low = n * (msr - f_low * mse) / (f_low * (k * msc + (k * n - k - n) * mse) + n * msr)
    high = n * (f_high * msr - mse) / (k * msc + (k * n - k - n) * mse + n * f_high * msr)
    return Estimate(
        "ICC(2,1): two-way random effects, absolute agreement, one reader; F-based interval",
        float(icc), (float(low), float(high)), n,
    )  # fmt: skip
