"""The reader-aware statistics against references: scipy's exact Mann-Whitney and permutation
tests, a plain loop, statsmodels' GLM and multipletests."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.stats import mannwhitneyu, rankdata
from statsmodels.stats.multitest import multipletests

from backend.stats.clustered import (
    gee_fit,
    holm,
    stratified_cliffs_delta,
    van_elteren_permutation,
)


def test_one_reader_is_the_exact_mann_whitney_test() -> None:
    """One reader: the permutation distribution is the Mann-Whitney one. Enumerated in full, it
    gives scipy's exact P (ties of the statistic counted whole), and its mid-P is ours."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(0.8, 1, 7), rng.normal(0, 1, 6)  # no ties: scipy's exact P is defined
    values = np.concatenate([x, y])
    pie = np.arange(13) < 7
    ranks = rankdata(values)
    centre = 7 * 7.0  # the expected PIE rank sum, 7 * (13 + 1) / 2
    observed = abs(ranks[:7].sum() - centre)
    sums = np.array(
        [abs(ranks[list(c)].sum() - centre) for c in itertools.combinations(range(13), 7)]
    )
    assert np.mean(sums >= observed - 1e-9) == pytest.approx(
        mannwhitneyu(x, y, method="exact").pvalue, abs=1e-12
    )
    mid = np.mean(sums > observed + 1e-9) + 0.5 * np.mean(np.abs(sums - observed) <= 1e-9)
    got = van_elteren_permutation(values, pie, np.zeros(13), permutations=40_000, seed=1)
    assert got is not None and got.readers == 1
    assert got.p == pytest.approx(mid, abs=0.006)  # Monte Carlo error about 0.0025


def test_two_readers_against_full_enumeration_of_the_within_reader_permutations() -> None:
    values = np.array([1, 2, 2, 4, 5, 3, 3, 1, 4, 5, 5, 2], dtype=float)
    pie = np.array([1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0], dtype=bool)
    reader = np.repeat([0, 1], 6)

    def statistic(labels: np.ndarray) -> float:
        total = 0.0
        for r in (0, 1):
            v, lab = values[reader == r], labels[reader == r]
            ranks = rankdata(v) / (v.size + 1)
            total += ranks[lab].sum() - lab.sum() * ranks.mean()
        return total

    observed = statistic(pie)
    stats = []
    for a in itertools.combinations(range(6), 3):
        for b in itertools.combinations(range(6), 3):
            labels = np.zeros(12, dtype=bool)
            labels[list(a)] = True
            labels[[6 + i for i in b]] = True
            stats.append(statistic(labels))
    extreme = np.abs(np.abs(stats) - abs(observed))
    # the exact mid-P: as extreme counts half
    exact = np.mean(np.abs(stats) > abs(observed) + 1e-9) + 0.5 * np.mean(extreme <= 1e-9)
    got = van_elteren_permutation(values, pie, reader, permutations=40_000, seed=2)
    assert got is not None and got.statistic == pytest.approx(observed)
    assert got.p == pytest.approx(exact, abs=0.01)


def test_shared_cases_against_full_enumeration_of_the_allocations() -> None:
    """3 readers, each with 4 own cases (2 PIEs) and the same 6 shared cases (3 PIEs): every
    labelling the allocation could have drawn (6^3 for the own cases x 20 for the shared) is
    enumerated; a shared case carries one label for all three readers."""
    rng = np.random.default_rng(12)
    reader = np.repeat([0, 1, 2], 10)
    case = np.concatenate(
        [np.concatenate([r * 4 + np.arange(4), 100 + np.arange(6)]) for r in range(3)]
    )
    shared_effect = rng.normal(0, 1, 6)
    values = np.concatenate([
        np.concatenate([rng.integers(1, 6, 4), np.clip(np.round(3 + shared_effect + rng.normal(0, .5, 6)), 1, 5)])
        for _ in range(3)
    ]).astype(float)  # fmt: skip
    own_pies, shared_pies = (0, 1), (0, 2, 3)
    pie = np.concatenate([np.isin(np.arange(10), [*own_pies, *(4 + i for i in shared_pies)])] * 3)
    scores = np.concatenate([rankdata(values[reader == r]) / 11 for r in range(3)])

    def statistic(labels: np.ndarray) -> float:
        return float(
            sum(
                scores[(reader == r) & labels].sum()
                - labels[reader == r].sum() * scores[reader == r].mean()
                for r in range(3)
            )
        )

    stats = []
    own_choices = list(itertools.combinations(range(4), 2))
    for a, b, c in itertools.product(own_choices, repeat=3):
        for s in itertools.combinations(range(6), 3):
            labels = np.concatenate(
                [np.isin(np.arange(10), [*o, *(4 + i for i in s)]) for o in (a, b, c)]
            )
            stats.append(statistic(labels))
    observed = statistic(pie)
    extreme = np.abs(np.abs(stats) - abs(observed))
    exact = np.mean(np.abs(stats) > abs(observed) + 1e-9) + 0.5 * np.mean(extreme <= 1e-9)
    got = van_elteren_permutation(values, pie, reader, case=case, permutations=40_000, seed=3)
    assert got is not None and got.readers == 3 and "whole cases" in got.method
    assert got.statistic == pytest.approx(observed)
    assert got.p == pytest.approx(exact, abs=0.01)
    # a shared case in two groups at once is no allocation
    broken = pie.copy()
    broken[4] = ~broken[4]
    with pytest.raises(ValueError, match="same group for every reader"):
        van_elteren_permutation(values, broken, reader, case=case)


def test_a_reader_shift_changes_nothing_within_readers() -> None:
    """The point of stratifying: one reader grading everything higher is not a PIE effect."""
    rng = np.random.default_rng(0)
    values = rng.integers(1, 4, 80).astype(float)
    pie = rng.random(80) < 0.5
    reader = np.repeat([0, 1], 40)
    shifted = values + 2 * (reader == 1)
    assert van_elteren_permutation(values, pie, reader, seed=3) == van_elteren_permutation(
        shifted, pie, reader, seed=3
    )
    a = stratified_cliffs_delta(values, pie, reader, seed=3)
    b = stratified_cliffs_delta(shifted, pie, reader, seed=3)
    assert a is not None and b is not None and a.ci is not None and b.ci is not None
    assert a.estimate == b.estimate
    assert a.ci == pytest.approx(b.ci, abs=0.03)  # the same bootstrap, other random draws


def test_cliffs_delta_equals_a_plain_loop_and_is_a_difference_in_proportions_for_yes_no() -> None:
    rng = np.random.default_rng(5)
    values = rng.integers(1, 6, 120).astype(float)
    pie = rng.random(120) < 0.45
    reader = rng.integers(0, 4, 120)
    deltas, weights = [], []
    for r in range(4):
        x, y = values[(reader == r) & pie], values[(reader == r) & ~pie]
        deltas.append(np.sign(x[:, None] - y[None, :]).mean())
        weights.append(x.size * y.size / (x.size + y.size))
    got = stratified_cliffs_delta(values, pie, reader, resamples=500, seed=1)
    assert got is not None and got.ci is not None
    assert got.estimate == pytest.approx(np.dot(deltas, weights) / sum(weights), abs=1e-12)
    assert got.ci[0] <= got.estimate <= got.ci[1]
    yes = (values >= 3).astype(float)
    diff = [yes[(reader == r) & pie].mean() - yes[(reader == r) & ~pie].mean() for r in range(4)]
    binary = stratified_cliffs_delta(yes, pie, reader, resamples=500, seed=1)
    assert binary is not None
    assert binary.estimate == pytest.approx(np.dot(diff, weights) / sum(weights), abs=1e-12)


def test_undefined_cases_are_none() -> None:
    pie = np.array([True, True, False, False])
    assert van_elteren_permutation(np.ones(4), pie, np.zeros(4)) is None  # nothing varies
    assert stratified_cliffs_delta(np.ones(4), pie, np.array([0, 0, 1, 1])) is None  # no mix
    assert gee_fit(np.ones(4), pie, np.zeros(4), binary=True) is None


def test_the_logistic_gee_estimate_is_the_pooled_logistic_regression() -> None:
    """With working independence, the GEE's estimate is the GLM's maximum likelihood one; only
    its variance is the readers' (the sandwich)."""
    rng = np.random.default_rng(8)
    reader = np.repeat(np.arange(6), 40)
    pie = np.tile(np.arange(40) < 20, 6)
    yes = (rng.random(240) < 0.45 + 0.1 * pie + 0.05 * (reader % 3)).astype(float)
    got = gee_fit(yes, pie, reader, binary=True)
    glm = sm.GLM(yes, sm.add_constant(pie.astype(float)), family=sm.families.Binomial()).fit()
    assert got is not None and got.clusters == 6
    assert got.estimate == pytest.approx(glm.params[1], abs=1e-6)
    assert got.ci[0] < got.estimate < got.ci[1] and 0 < got.p < 1
    scale = gee_fit(rng.integers(1, 6, 240).astype(float), pie, reader, binary=False)
    assert scale is not None and "ordinal" in scale.method


def test_holm_matches_statsmodels_and_keeps_the_untested_out() -> None:
    ps = [0.01, None, 0.04, 0.03]
    ref = multipletests([0.01, 0.04, 0.03], method="holm")[1]
    got = holm(ps)
    assert got[1] is None
    assert [got[0], got[2], got[3]] == pytest.approx(list(ref))
    assert holm([None, None]) == [None, None]
