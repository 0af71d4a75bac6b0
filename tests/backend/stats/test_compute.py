from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kruskal

from backend.stats.compute import (
    StatisticUndefinedError,
    compare,
    epsilon_squared,
    kruskal_wallis,
    summarize,
)

likert = st.lists(st.integers(1, 5), min_size=2, max_size=80)
reals = st.lists(
    st.floats(-1e3, 1e3, allow_nan=False).map(lambda x: round(x, 1)), min_size=2, max_size=60
)


@given(groups=st.lists(likert, min_size=2, max_size=4))
@settings(max_examples=300, deadline=None)
def test_kruskal_equals_scipy_on_tied_likert_data(groups: list[list[int]]) -> None:
    arrays = [np.array(g, dtype=float) for g in groups]
    if len(np.unique(np.concatenate(arrays))) < 2:
        with pytest.raises(StatisticUndefinedError, match="equal"):
            kruskal_wallis(arrays)
        return
    ours = kruskal_wallis(arrays)
    ref = kruskal(*arrays)
    assert ours.h == pytest.approx(ref.statistic, abs=1e-12, rel=1e-12)
    if np.isnan(ref.pvalue):
        # identical rank sums: H is 0; scipy's rounds below 0 and gives NaN, ours is clamped
        assert abs(ref.statistic) < 1e-12 and ours.h == 0.0 and ours.p == 1.0
    else:
        assert ours.p == pytest.approx(ref.pvalue, abs=1e-12, rel=1e-12)
    assert ours.df == len(groups) - 1


@given(a=reals, b=reals)
@settings(max_examples=200, deadline=None)
def test_kruskal_equals_scipy_on_real_values(a: list[float], b: list[float]) -> None:
    x, y = np.array(a), np.array(b)
    if len(np.unique(np.concatenate([x, y]))) < 2:
        return
    ref = kruskal(x, y)
    ours = kruskal_wallis([x, y])
    assert abs(ours.h - ref.statistic) <= 1e-12 * max(1.0, abs(ref.statistic))
    assert abs(ours.p - ref.pvalue) <= 1e-12


def test_binary_agreement_question() -> None:
    pie = np.array([1, 0, 1, 1, 0, 1, 0, 0] * 10, dtype=float)
    non = np.array([1, 1, 1, 0, 1, 1, 0, 1] * 10, dtype=float)
    c = compare(pie, non, binary=True)
    assert c.pie.percent_yes == 50.0 and c.non_pie.percent_yes == 75.0
    assert c.test is not None
    assert c.test.h == pytest.approx(kruskal(pie, non).statistic, abs=1e-12)


def test_summaries_match_numpy() -> None:
    v = np.array([3, 4, 2, 5, 5, 1, 3], dtype=float)
    s = summarize(v, binary=False)
    assert s.n == 7 and s.median == 3.0
    assert s.mean == pytest.approx(v.mean())
    assert s.sd == pytest.approx(np.std(v, ddof=1))
    assert s.percent_yes is None
    assert summarize(np.array([4.0]), binary=False).sd is None
    assert summarize(np.array([]), binary=False) == summarize(np.array([]), binary=False)


def test_undefined_cases_say_why() -> None:
    few = compare(np.array([3.0]), np.array([2.0, 4.0, 5.0]), binary=False)
    assert few.test is None and few.note is not None and "PIE has 1" in few.note
    same = compare(np.full(20, 3.0), np.full(25, 3.0), binary=False)
    assert same.test is None and same.note is not None and "all 45 values are equal" in same.note
    assert same.pie.mean == 3.0  # the descriptive part is still given
    with pytest.raises(StatisticUndefinedError):
        kruskal_wallis([np.array([1.0, 2.0])])


def test_epsilon_squared_is_h_over_n_minus_one() -> None:
    rng = np.random.default_rng(7)
    a = rng.integers(1, 6, 60).astype(float)
    b = np.clip(rng.integers(1, 6, 70) + 1, 1, 5).astype(float)
    n = a.size + b.size
    h = kruskal(a, b).statistic
    c = compare(a, b, binary=False)
    assert c.epsilon_squared == pytest.approx(h * (n + 1) / (n**2 - 1), abs=1e-12)
    assert epsilon_squared(h, n) == pytest.approx(h / (n - 1))


def test_identical_rank_sums_give_h_zero_and_p_one() -> None:
    a = np.array([1.0] * 36 + [2.0] * 8)
    b = np.array([1.0] * 18 + [2.0] * 4)  # the same share of 2s: H = 0
    result = kruskal_wallis([a, b])
    assert result.h == 0.0 and result.p == 1.0
