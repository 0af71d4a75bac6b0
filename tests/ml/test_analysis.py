from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import average_precision_score
from statsmodels.stats.contingency_tables import Table2x2
from typer.testing import CliRunner

from backend.cli import app as cli
from ml.analysis.core import forgettability, overall, pairs, pie_characteristics, ratio_interval
from ml.analysis.report import analyze, write_report
from ml.analysis.synthetic import synthetic_store, train_counts_for
from ml.metrics import average_precision, mean_ap

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def sklearn_grid(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    out = np.full((*s.shape[:-2], y.shape[1]), np.nan)
    for idx in np.ndindex(*s.shape[:-2]):
        for c in range(y.shape[1]):
            if y[:, c].sum():
                out[(*idx, c)] = average_precision_score(y[:, c], s[idx][:, c])
    return out


@given(st.integers(0, 2**32 - 1), st.integers(5, 200), st.sampled_from([2, 5, 100]))
@settings(max_examples=60, deadline=None)
def test_ap_equals_sklearn_with_ties(seed: int, n: int, levels: int) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 4)) < 0.3).astype(np.uint8)
    s = (rng.integers(0, levels, (2, 3, n, 4)) / levels).astype(np.float32)  # heavy ties
    ours, ref = average_precision(y, s, blocks=2), sklearn_grid(y, s)
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    assert np.nanmax(np.abs(ours - ref), initial=0.0) <= 1e-12


def test_ap_equals_sklearn_for_logits_and_signed_zeros() -> None:
    # Scores in [0, 1] take the integer-sort path; logits (negative values) the float one; -0.0
    # and +0.0 are one tie group on both.
    rng = np.random.default_rng(5)
    y = (rng.random((300, 3)) < 0.3).astype(np.uint8)
    logits = rng.normal(0, 2, (2, 2, 300, 3)).astype(np.float32)
    probabilities = (rng.integers(0, 4, (2, 2, 300, 3)) / 3).astype(np.float32)
    probabilities[probabilities == 0] = rng.choice([0.0, -0.0], (probabilities == 0).sum())
    for s in (logits, probabilities):
        ours, ref = average_precision(y, s, blocks=3), sklearn_grid(y, s)
        assert np.nanmax(np.abs(ours - ref), initial=0.0) <= 1e-12


def test_class_without_positives_is_nan_and_left_out_of_map() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((100, 3)) < 0.3).astype(np.uint8)
    y[:, 2] = 0
    ap = average_precision(y, rng.random((100, 3)).astype(np.float32))
    assert math.isnan(ap[2]) and not math.isnan(ap[0])
    assert mean_ap(ap) == pytest.approx(np.mean(ap[:2]))


def test_overall_welch_and_first_significant_k() -> None:
    rng = np.random.default_rng(1)
    ks = (0.0, 0.3, 0.6, 0.9)
    base = 0.6 + rng.normal(0, 0.005, (10, 1, 1))
    drop = np.array([0, 0, 0.05, 0.2]).reshape(1, 4, 1)
    ap = np.repeat(base - drop, 3, axis=2) + rng.normal(0, 0.002, (10, 4, 3))
    o = overall(ap, ks, alpha=0.001)
    grid = ap.mean(axis=2)
    assert np.allclose(o.map_grid, grid) and np.allclose(o.median_map, np.median(grid, axis=0))
    ref = stats.ttest_ind(grid[:, 0], grid[:, 2], equal_var=False)
    assert o.welch[2].t == pytest.approx(ref.statistic) and o.welch[2].p == pytest.approx(
        ref.pvalue
    )
    assert o.first_significant_k == 0.6


def test_forgettability_pairs_and_ols_against_references() -> None:
    rng = np.random.default_rng(2)
    s, ks, c = 5, (0.0, 0.5, 0.9, 0.95), 6
    ap = np.clip(
        0.5
        + rng.normal(0, 0.1, (s, 4, c))
        - np.linspace(0, 0.4, 4).reshape(1, 4, 1) * rng.random(c),
        0.01,
        1,
    )
    names = [f"c{i}" for i in range(c)]
    train = [10, 50, 200, 1000, 3000, 8000]
    f = forgettability(ap, ks, names, train, [5] * c)
    rel = np.median((ap - ap[:, :1]) / ap[:, :1], axis=0)
    assert np.allclose(f.curves, rel)
    for i, cls in enumerate(f.classes):
        below = np.flatnonzero(rel[:, i] < -0.2)
        assert cls.first_k_below == (ks[below[0]] if below.size else None)
        assert cls.value_at_max == pytest.approx(rel[-1, i])
    at95 = [float(cls.value_at_max) for cls in f.classes if cls.value_at_max is not None]
    ref = stats.spearmanr(np.log10(train), at95)
    assert f.value_at_max_vs_freq.spearman_rho == pytest.approx(ref.statistic)
    assert f.value_at_max_vs_freq.pearson_r == pytest.approx(
        stats.pearsonr(np.log10(train), at95).statistic
    )

    labels = (rng.random((300, c)) < np.linspace(0.4, 0.05, c)).astype(np.uint8)
    p = pairs(f.curves, labels, names)
    assert len(p.fcd) == c * (c - 1) // 2
    i, j = names.index(p.a[3]), names.index(p.b[3])
    assert p.fcd[3] == pytest.approx(np.mean((rel[:, i] - rel[:, j]) ** 2))
    yb = labels.astype(bool)
    assert p.iou[3] == pytest.approx((yb[:, i] & yb[:, j]).sum() / (yb[:, i] | yb[:, j]).sum())
    assert p.dlogfreq[3] == pytest.approx(abs(np.log10(yb[:, i].sum()) - np.log10(yb[:, j].sum())))
    frame = pd.DataFrame({"fcd": p.fcd, "d": p.dlogfreq, "q": p.iou**0.25})
    ref_fit = smf.ols("fcd ~ d + q + d:q", data=frame).fit()
    assert p.ols is not None
    assert np.allclose(p.ols.coef, ref_fit.params.to_numpy(), atol=1e-10)
    assert np.allclose(p.ols.p, ref_fit.pvalues.to_numpy(), atol=1e-10)
    assert p.ols.r_squared == pytest.approx(ref_fit.rsquared)


def test_pie_characteristics() -> None:
    classes = ["No Finding", "A", "B", "C", "D", "E"]
    labels = np.array(
        [[1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0], [0, 1, 1, 1, 1, 1],
         [1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=np.uint8,
    )  # fmt: skip
    is_pie = np.array([False, False, False, True, False, True, True, False])
    ch = pie_characteristics(labels, is_pie, classes)
    assert ch.class_ratio[classes.index("B")] == pytest.approx((3 / 3) / (1 / 5))
    assert math.isnan(ch.class_ratio[classes.index("E")])  # no non-PIE has E
    # findings per image (No Finding is not counted): PIEs 5->4+, 1, 3; non-PIEs 0, 1, 2, 0, 0
    assert ch.bin_ratio[1] == pytest.approx((1 / 3) / (1 / 5))
    assert math.isnan(ch.bin_ratio[4])  # no non-PIE has 4+ findings: undefined, not infinite
    assert ch.bin_ratio[0] == 0
    # the counts behind each ratio, and its interval: statsmodels' risk ratio (Katz's log method)
    b = classes.index("B")
    assert ch.class_counts[:, b].tolist() == [3, 1] and ch.bin_counts[:, 1].tolist() == [1, 1]
    table = Table2x2(
        np.array([[3, 0], [1, 4]]), shift_zeros=False
    )  # B: 3 of 3 PIEs, 1 of 5 non-PIEs
    assert ch.class_ci[b] == pytest.approx(table.riskratio_confint(), rel=1e-12)
    assert np.isnan(ch.class_ci[classes.index("E")]).all() and np.isnan(ch.bin_ci[4]).all()
    assert ch.bin_ci[0, 0] == 0 and ch.bin_ci[0, 1] > 0  # a ratio of 0: from 0 to an upper bound


def test_ratio_intervals_equal_statsmodels() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        n1, n2 = int(rng.integers(5, 200)), int(rng.integers(5, 2000))
        a, c = int(rng.integers(1, n1 + 1)), int(rng.integers(1, n2 + 1))
        want = Table2x2(np.array([[a, n1 - a], [c, n2 - c]]), shift_zeros=False).riskratio_confint()
        assert ratio_interval(np.array([a]), n1, np.array([c]), n2)[0] == pytest.approx(
            want, rel=1e-12
        )


def test_finds_rare_first_forgetting_and_not_in_the_control(tmp_path: Path) -> None:
    effect = synthetic_store(
        tmp_path / "effect", seeds=5, images=3000, classes=14, rare_forget_first=True
    )
    control = synthetic_store(
        tmp_path / "control", seeds=5, images=3000, classes=14, rare_forget_first=False
    )
    a = analyze(effect, train_counts_for(effect)).forgettability
    b = analyze(control, train_counts_for(control)).forgettability
    assert a.first_k_vs_freq.spearman_rho is not None and a.first_k_vs_freq.spearman_rho > 0.7
    assert a.first_k_vs_freq.spearman_p is not None and a.first_k_vs_freq.spearman_p < 0.001
    assert (
        a.value_at_max_vs_freq.spearman_rho is not None
        and a.value_at_max_vs_freq.spearman_rho > 0.7
    )
    assert b.first_k_vs_freq.spearman_p is not None and b.first_k_vs_freq.spearman_p > 0.05
    assert (
        b.value_at_max_vs_freq.spearman_p is not None and b.value_at_max_vs_freq.spearman_p > 0.05
    )


@pytest.mark.slow
def test_report_files_and_cli(tmp_path: Path) -> None:
    store = synthetic_store(tmp_path / "store", seeds=4, images=1500, classes=10)
    (tmp_path / "counts.json").write_text(
        json.dumps(dict(zip(store.meta.classes, train_counts_for(store), strict=True)))
    )
    r = CliRunner().invoke(
        cli,
        [
            "ml",
            "report",
            str(tmp_path / "store"),
            "--out",
            str(tmp_path / "rep"),
            "--train-counts",
            str(tmp_path / "counts.json"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "first significant mAP drop" in r.output
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 7 and "<script" not in page
    data = json.loads((tmp_path / "rep" / "analysis.json").read_text())
    assert set(data) >= {"overall", "forgettability", "pairs", "pies", "pie_characteristics", "ap"}
    assert len(data["overall"]["median_map"]) == 20 and data["pairs"]["ols"]["n"] == 45
    for name in (
        "fig1_map_and_weights",
        "fig2_forgettability_curves",
        "fig2b_forgettability_by_class",
        "fig3_forgettability_vs_frequency",
        "fig4_fcd",
        "fig5_pie_characteristics",
        "fig6_pie_scores",
    ):
        assert (tmp_path / "rep" / "figures" / f"{name}.png").stat().st_size > 5000
        svg = (tmp_path / "rep" / "figures" / f"{name}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "<text" in svg  # text stays text
        numbers = (tmp_path / "rep" / "figures" / f"{name}.csv").read_text().splitlines()
        assert len(numbers) > 2, name  # the numbers behind the figure
    fig2 = (tmp_path / "rep" / "figures" / "fig2_forgettability_curves.svg").read_text()
    assert "log10 training images of the class" in fig2  # the colour bar's label
    fig3 = (tmp_path / "rep" / "figures" / "fig3_forgettability_vs_frequency.svg").read_text()
    assert "least squares" in fig3 and data["classes"][0] in fig3  # fit line, class names
    by_class = (tmp_path / "rep" / "figures" / "fig2b_forgettability_by_class.csv").read_text()
    assert by_class.startswith("class,train_count,k,min,q1,median,q3,max")
    bad = CliRunner().invoke(
        cli, ["ml", "report", str(tmp_path / "store"), "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code == 2 and "training label counts" in bad.output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_report(analyze(store, train_counts_for(store)), tmp_path / "rep2")
    assert (tmp_path / "rep2" / "report.html").exists()
