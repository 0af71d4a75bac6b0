"""PIE vs non-PIE with readers as clusters: pure functions, numpy arrays in, dataclasses out.

A study's answers are not independent: each reader answers many cases and uses the scales in
their own way (one grades quality 4 where another grades 3). Pooling every answer into one test
treats 240 answers of 6 readers as 240 independent observations. Here every comparison is made
within a reader and then combined, so a reader's own level cancels:

- the test: van Elteren's stratified rank-sum statistic, sum over readers of the PIE rank sum
  (midranks within the reader) divided by (n_r + 1), with its mid-P value from permuting the
  PIE labels within each reader (a Monte Carlo permutation test, seeded). Conditioning on the readers
  makes it valid with however few readers there are, where a model's robust (sandwich) variance
  needs many clusters: with 6 it is anti-conservative. benchmarks/stats_validity.py measures both
  on simulated null studies, and tests/backend/stats/test_validity.py holds the test to its level.
- the effect size: Cliff's delta within each reader, P(PIE > non-PIE) - P(PIE < non-PIE), averaged
  over readers with weights m_r k_r / (m_r + k_r) (m_r PIE and k_r non-PIE answers), with a
  percentile bootstrap interval that resamples answers within each reader and group (its spread
  widened by sqrt(n / (n - 1)) for the plug-in variance's bias). It is
  signed, it is 0 under no effect, and its interval contains 0 as often as it should. For a
  yes/no question it is the reader-weighted difference in the proportion of "yes".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
PERMUTATIONS = 4999
BOOTSTRAP = 2000


@dataclass(frozen=True)
class StratifiedTest:
    method: str
    statistic: float  # van Elteren's T minus its expectation under no effect
    p: float
    permutations: int
    readers: int  # readers with answers in both groups (the others carry no comparison)


@dataclass(frozen=True)
class StratifiedEffect:
    method: str
    estimate: float  # Cliff's delta (for yes/no: the difference in the proportion of yes)
    ci: tuple[float, float] | None
    level: float
    resamples: int


@dataclass(frozen=True)
class _Stratum:
    values: Array
    pie: npt.NDArray[np.bool_]


def _strata(values: Array, is_pie: npt.ArrayLike, reader: npt.ArrayLike) -> list[_Stratum]:
    values = np.asarray(values, dtype=np.float64)
    pie = np.asarray(is_pie, dtype=bool)
    readers = np.asarray(reader)
    if not values.shape == pie.shape == readers.shape:
        raise ValueError("values, is_pie and reader must have one entry per answer")
    out = []
    for r in np.unique(readers):
        mask = readers == r
        if 0 < pie[mask].sum() < mask.sum():
            out.append(_Stratum(values[mask], pie[mask]))
    return out


def _subset_sums(rng: np.random.Generator, scores: Array, m: int, permutations: int) -> Array:
    """The sum of `scores` over a random m-subset, for each permutation."""
    n = scores.size
    if m >= n:
        return np.full(permutations, scores.sum())
    keys = rng.random((permutations, n))
    return np.asarray(scores[np.argpartition(keys, m - 1, axis=1)[:, :m]].sum(axis=1))


def _shared_cases(
    case: npt.ArrayLike | None, readers: npt.NDArray[np.int64] | np.ndarray, n: int
) -> npt.NDArray[np.bool_]:
    """Which answers are of a case that more than one reader answered (an overlap case)."""
    if case is None:
        return np.zeros(n, dtype=bool)
    cases = np.asarray(case)
    if cases.shape != (n,):
        raise ValueError("case must have one entry per answer")
    pairs = np.unique(np.stack([cases, np.asarray(readers)]), axis=1)
    ids, counts = np.unique(pairs[0], return_counts=True)
    return np.isin(cases, ids[counts > 1])


def van_elteren_permutation(
    values: Array, is_pie: npt.ArrayLike, reader: npt.ArrayLike, *,
    case: npt.ArrayLike | None = None, permutations: int = PERMUTATIONS, seed: int = 0,
) -> StratifiedTest | None:  # fmt: skip
    """Two-sided P of van Elteren's statistic by permuting the PIE labels as the allocation drew
    them: within each reader among the reader's own cases, and, for cases several readers read
    (given `case` ids), among those shared cases as whole cases, the same permutation for every
    reader. A shared case's answers are correlated across its readers (a hard case is hard for
    all); permuting its label per reader would treat them as independent, and the test would
    reject far too often (benchmarks/stats_validity.py). None where nothing can be permuted."""
    from scipy.stats import rankdata

    values = np.asarray(values, dtype=np.float64)
    pie = np.asarray(is_pie, dtype=bool)
    readers = np.asarray(reader)
    if not values.shape == pie.shape == readers.shape:
        raise ValueError("values, is_pie and reader must have one entry per answer")
    shared = _shared_cases(case, readers, values.size)
    centred = np.zeros(values.size)
    for r in np.unique(readers):
        mask = readers == r
        ranks = rankdata(values[mask]) / (mask.sum() + 1)
        centred[mask] = ranks - ranks.mean()
    rng = np.random.default_rng(seed)
    observed, null = 0.0, np.zeros(permutations)
    counted: set[object] = set()  # readers whose answers take part in the test
    # own cases: within each reader whose own answers vary and hold both groups
    for r in np.unique(readers):
        own = (readers == r) & ~shared
        m = int(pie[own].sum())
        if not (0 < m < own.sum()) or np.ptp(values[own]) == 0:
            continue
        scores = centred[own] - centred[own].mean()  # permuted: the expected sum is 0
        observed += float(scores[pie[own]].sum())
        null += _subset_sums(rng, scores, m, permutations)
        counted.add(r.item())
    if shared.any():  # shared cases: one permutation of whole cases for every reader
        ids, where = np.unique(np.asarray(case)[shared], return_inverse=True)
        per_case = np.bincount(where, weights=centred[shared], minlength=ids.size)
        labels = np.zeros(ids.size)
        np.maximum.at(labels, where, pie[shared].astype(float))
        if not np.array_equal(labels[where], pie[shared].astype(float)):
            raise ValueError("a shared case must be in the same group for every reader")
        m = int(labels.sum())
        if 0 < m < ids.size and np.ptp(per_case) > 0:
            scores = per_case - per_case.mean()
            observed += float(scores[labels.astype(bool)].sum())
            null += _subset_sums(rng, scores, m, permutations)
            counted.update(readers[shared].tolist())
    if not counted:
        return None
    # mid-P: permutations as extreme as the data count half (the data themselves among them).
    # A yes/no answer leaves few distinct values of the statistic, and counting ties whole makes
    # the test conservative: 2.9% false positives at 0.05 on 1,000 simulated null studies of
    # 6 x 40, where mid-P keeps it near the level.
    tol = 1e-9 * max(1.0, abs(observed))
    greater = int(np.sum(np.abs(null) > abs(observed) + tol))
    ties = int(np.sum(np.abs(np.abs(null) - abs(observed)) <= tol))
    how = "within each reader" + (", shared cases as whole cases" if shared.any() else "")
    return StratifiedTest(
        method=(
            "van Elteren's stratified rank-sum test, mid-P from permuting the PIE labels "
            f"{how} ({permutations:,} permutations)"
        ),
        statistic=observed,
        p=(greater + 0.5 * (ties + 1)) / (permutations + 1),
        permutations=permutations,
        readers=len(counted),
    )


def _weighted_delta(p: Array, q: Array, sign: Array, weights: Array) -> Array:
    """Cliff's delta per resample from value frequencies p (PIE) and q (non-PIE), [..., R, K];
    a reader whose frequencies are undefined (nan) in a resample is left out of its average."""
    per_reader = np.einsum("...rk,kl,...rl->...r", p, sign, q)
    if not np.isnan(per_reader).any():
        return np.asarray(per_reader @ weights / weights.sum(), dtype=np.float64)
    w = np.where(np.isnan(per_reader), 0.0, weights)
    return np.asarray(np.nansum(per_reader * w, axis=-1) / w.sum(axis=-1), dtype=np.float64)


def _counts(values: Array, levels: Array) -> npt.NDArray[np.int64]:
    return np.array([np.sum(values == v) for v in levels], dtype=np.int64)


def _own_resample(
    rng: np.random.Generator, counts: npt.NDArray[np.int64], resamples: int
) -> npt.NDArray[np.int64]:
    """Each reader's own answers of one group resampled with replacement: their value counts,
    drawn from a multinomial, [B, R, K]."""
    n = counts.sum(axis=1)
    freq = counts / np.maximum(n, 1)[:, None]
    freq[n == 0] = 1.0 / counts.shape[1]  # no answers: multinomial(0, ...) draws nothing
    return rng.multinomial(n, freq, size=(resamples, counts.shape[0]))


def stratified_cliffs_delta(
    values: Array, is_pie: npt.ArrayLike, reader: npt.ArrayLike, *,
    case: npt.ArrayLike | None = None, resamples: int = BOOTSTRAP, seed: int = 0,
    level: float = 0.95,
) -> StratifiedEffect | None:  # fmt: skip
    """Cliff's delta within readers, weighted, with a percentile bootstrap interval; None where no
    reader has answers in both groups. The bootstrap resamples each reader's own answers within
    reader and group, and cases that several readers read (given `case` ids) as whole cases
    within their group, the same draw for every reader: their answers are correlated across
    readers, and resampling them per reader gave intervals that covered 73% where they should
    cover 95% (200 simulated studies of 6 readers x 10 own + 30 shared cases, case SD 1)."""
    values = np.asarray(values, dtype=np.float64)
    pie_mask = np.asarray(is_pie, dtype=bool)
    readers = np.asarray(reader)
    strata = _strata(values, pie_mask, readers)
    if not strata:
        return None
    shared = _shared_cases(case, readers, values.size)
    kept = [
        r for r in np.unique(readers) if 0 < pie_mask[readers == r].sum() < (readers == r).sum()
    ]
    levels = np.unique(np.concatenate([s.values for s in strata]))
    sign = np.sign(levels[:, None] - levels[None, :])
    # how often each value was given, per reader: PIE [R, K] and non-PIE [R, K]
    pie = np.array([[np.sum(s.values[s.pie] == v) for v in levels] for s in strata])
    non = np.array([[np.sum(s.values[~s.pie] == v) for v in levels] for s in strata])
    m, k = pie.sum(axis=1), non.sum(axis=1)
    weights = (m * k / (m + k)).astype(np.float64)
    fp, fn = pie / m[:, None], non / k[:, None]
    estimate = float(_weighted_delta(fp, fn, sign, weights))
    rng = np.random.default_rng(seed)
    if not shared.any():
        # resampling m answers with replacement draws their frequencies from a multinomial
        p = rng.multinomial(m, fp, size=(resamples, len(strata))) / m[:, None]
        q = rng.multinomial(k, fn, size=(resamples, len(strata))) / k[:, None]
    else:
        p, q = (
            _two_stage(rng, values, readers, kept, levels, shared, np.asarray(case), group, resamples)
            for group in (pie_mask, ~pie_mask)
        )  # fmt: skip
    deltas = _weighted_delta(p, q, sign, weights)
    # The bootstrap's variance is the plug-in one, (n - 1) / n of the unbiased: with 20 answers
    # a cell that is 5% too small, and the interval covers 93-94% where it should cover 95%.
    # The resamples' spread is widened by sqrt(n / (n - 1)), n the smallest cell (or the fewest
    # shared cases of a group, where those are resampled whole).
    n = float(min(m.min(), k.min()))
    if shared.any():
        n = min(
            n, *(len(np.unique(np.asarray(case)[shared & g])) or n for g in (pie_mask, ~pie_mask))
        )
    if n > 1:
        deltas = estimate + (deltas - estimate) * np.sqrt(n / (n - 1))
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.nanpercentile(deltas, [tail, 100.0 - tail])
    how = "within reader and group" + (", shared cases as whole cases" if shared.any() else "")
    return StratifiedEffect(
        method=(
            "Cliff's delta within each reader, weighted m*k/(m+k); percentile bootstrap "
            f"resampling answers {how} ({resamples:,} resamples)"
        ),
        estimate=estimate,
        ci=(float(low), float(high)),
        level=level,
        resamples=resamples,
    )


def _two_stage(
    rng: np.random.Generator, values: Array, readers: np.ndarray, kept: list[object],
    levels: Array, shared: npt.NDArray[np.bool_], case: np.ndarray,
    group: npt.NDArray[np.bool_], resamples: int,
) -> Array:  # fmt: skip
    """One group's value frequencies per resample and reader, [B, R, K]: each reader's own
    answers resampled within the reader, the group's shared cases resampled as whole cases."""
    own = np.array([_counts(values[(readers == r) & group & ~shared], levels) for r in kept])
    counts = _own_resample(rng, own, resamples).astype(np.float64)
    ids = np.unique(case[shared & group])
    if ids.size:
        # onehot[c, r, k]: reader r gave case c the value levels[k]
        onehot = np.zeros((ids.size, len(kept), levels.size))
        for j, r in enumerate(kept):
            mine = shared & group & (readers == r)
            onehot[np.searchsorted(ids, case[mine]), j, np.searchsorted(levels, values[mine])] = 1
        draws = rng.multinomial(ids.size, np.full(ids.size, 1.0 / ids.size), size=resamples)
        counts += np.einsum("bc,crk->brk", draws, onehot)
    total = counts.sum(axis=2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(counts / total)  # nan where a reader drew no answers of the group


@dataclass(frozen=True)
class ModelFit:
    method: str
    estimate: float  # log odds ratio, PIE against non-PIE
    ci: tuple[float, float]
    p: float
    clusters: int


def gee_fit(
    values: Array, is_pie: npt.ArrayLike, reader: npt.ArrayLike, *, binary: bool,
    level: float = 0.95,
) -> ModelFit | None:  # fmt: skip
    """A marginal model with readers as clusters: logistic GEE for a yes/no question, an ordinal
    (cumulative logit) GEE for a 1-5 scale; working independence, the bias-reduced sandwich
    variance (Mancl & DeRouen). None where it cannot be fitted (one group, one value)."""
    import warnings

    import statsmodels.api as sm
    from scipy.stats import norm

    y = np.asarray(values, dtype=np.float64)
    x = np.asarray(is_pie, dtype=np.float64)[:, None]
    groups = np.asarray(reader)
    if y.size == 0 or np.ptp(y) == 0 or np.ptp(x) == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; a failed fit is None below
        try:
            if binary:
                model = sm.GEE(
                    y, sm.add_constant(x, has_constant="add"), groups=groups,
                    family=sm.families.Binomial(), cov_struct=sm.cov_struct.Independence(),
                )  # fmt: skip
                name = "logistic GEE"
            else:
                model = sm.OrdinalGEE(y, x, groups=groups, cov_struct=sm.cov_struct.Independence())
                name = "ordinal (cumulative logit) GEE"
            result = model.fit(cov_type="bias_reduced")
        except (ValueError, np.linalg.LinAlgError, ZeroDivisionError):
            return None
    estimate = float(np.asarray(result.params)[-1])
    se = float(np.asarray(result.bse)[-1])
    if not (np.isfinite(estimate) and np.isfinite(se)):
        return None
    z = float(norm.ppf(0.5 + level / 2))
    clusters = len(np.unique(groups))
    return ModelFit(
        method=(
            f"{name}, readers as {clusters} clusters, working independence, bias-reduced "
            "sandwich variance; log odds ratio PIE vs non-PIE"
        ),
        estimate=estimate,
        ci=(estimate - z * se, estimate + z * se),
        p=float(2 * norm.sf(abs(estimate / se))),
        clusters=clusters,
    )


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment over the P values given (None: not tested, left out)."""
    from statsmodels.stats.multitest import multipletests

    tested = [p for p in p_values if p is not None]
    if not tested:
        return list(p_values)
    adjusted = iter(multipletests(tested, method="holm")[1])
    return [None if p is None else float(next(adjusted)) for p in p_values]
