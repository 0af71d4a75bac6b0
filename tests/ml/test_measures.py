"""The disagreement measures beyond the paper's Spearman, each against a reference (scipy), and
chosen through `ml pies --measure`, the analysis and the run parameters."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy.spatial.distance import cityblock, jensenshannon
from scipy.stats import kendalltau

from ml.measures import (
    MEASURES,
    agreement_score,
    decision_flips,
    jensen_shannon_distance,
    l1_distance,
    rowwise_kendall,
    rowwise_spearman,
)
from ml.pies import find_pies, pie_scores
from ml.runparams import RunParams
from ml.store import SPARSITIES
from tests.ml.test_pies import pandas_reference

pytestmark = pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")


def scipy_kendall(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([kendalltau(x, y, variant="b").statistic for x, y in zip(a, b, strict=True)])


def test_kendall_equals_scipy_with_ties_and_constant_rows() -> None:
    rng = np.random.default_rng(0)
    a = np.round(rng.random((300, 20)), 1)  # many ties
    b = np.round(a + rng.normal(0, 0.2, a.shape), 1)
    a[3] = 0.5
    b[7] = 0.25
    ours, ref = rowwise_kendall(a, b, chunk=64), scipy_kendall(a, b)  # several chunks
    assert np.array_equal(np.isnan(ours), np.isnan(ref)) and np.isnan(ours[[3, 7]]).all()
    ok = ~np.isnan(ref)
    assert np.max(np.abs(ours[ok] - ref[ok])) <= 1e-12


@pytest.mark.parametrize(
    ("ours", "reference"),
    [(rowwise_spearman, pandas_reference), (rowwise_kendall, scipy_kendall)],
    ids=["spearman-vs-pandas", "kendall-vs-scipy"],
)
@given(st.integers(2, 12), st.integers(1, 30), st.integers(0, 2**32 - 1), st.integers(1, 4))
@settings(max_examples=50, deadline=None)
def test_rank_correlations_property(
    ours: Callable[[np.ndarray, np.ndarray], np.ndarray],
    reference: Callable[[np.ndarray, np.ndarray], np.ndarray],
    c: int, n: int, seed: int, levels: int,
) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    a = rng.integers(0, levels + 1, (n, c)).astype(float)
    b = rng.integers(0, levels + 1, (n, c)).astype(float)
    got, ref = ours(a, b), reference(a, b)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert np.all(np.abs(got[ok] - ref[ok]) <= 1e-12)


def test_l1_and_jensen_shannon_equal_scipy() -> None:
    rng = np.random.default_rng(1)
    a = rng.random((200, 14))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    a[4, 3:] = 0.0  # zeros: 0 log 0 = 0
    b[9] = 0.0  # sums to 0: no distribution, undefined
    assert np.allclose(
        l1_distance(a, b), [cityblock(x, y) for x, y in zip(a, b, strict=True)], rtol=0, atol=1e-12
    )
    ours = jensen_shannon_distance(a, b)
    ok = np.arange(200) != 9
    ref = np.array([jensenshannon(x, y, base=2) for x, y in zip(a[ok], b[ok], strict=True)])
    assert np.max(np.abs(ours[ok] - ref)) <= 1e-12 and np.isnan(ours[9])
    assert np.all((ours[ok] >= 0) & (ours[ok] <= 1))
    assert np.allclose(jensen_shannon_distance(a, a)[ok], 0.0, atol=1e-7)


def test_flips_count_the_decisions_that_change() -> None:
    a = np.array([[0.1, 0.6, 0.5, 0.9], [0.2, 0.2, 0.2, 0.2]])
    b = np.array([[0.7, 0.4, 0.49, 0.95], [0.2, 0.2, 0.2, 0.2]])
    assert decision_flips(a, b).tolist() == [3.0, 0.0]  # 0.5 is a positive decision
    assert decision_flips(a, b, threshold=0.3).tolist() == [1.0, 0.0]


def test_every_measure_is_oriented_as_an_agreement() -> None:
    """Lower is more forgotten, whatever the measure: a row left alone scores at least as well
    as a row whose predictions were scrambled."""
    rng = np.random.default_rng(2)
    dense = rng.random((400, 10))
    pruned = dense.copy()
    pruned[200:] = rng.permutation(dense[200:].T).T * rng.uniform(0.2, 1.8, (200, 10))
    pruned[200:] = np.clip(pruned[200:], 0, 1)
    for measure in MEASURES:
        s = agreement_score(measure, dense, pruned)
        assert np.nanmean(s[:200]) > np.nanmean(s[200:]), measure
        assert np.allclose(s[:200], s[:200].max()), measure  # unchanged rows: the best score
    assert np.array_equal(
        agreement_score("spearman", dense, pruned), rowwise_spearman(dense, pruned)
    )
    with pytest.raises(ValueError, match="unknown measure 'cosine': one of spearman, kendall"):
        agreement_score("cosine", dense, pruned)


def test_pie_sets_by_each_measure() -> None:
    rng = np.random.default_rng(3)
    preds = rng.random((2, len(SPARSITIES), 120, 8)).astype(np.float32)
    ids = [f"img{i:03d}" for i in range(120)]
    dense = preds[:, 0].astype(np.float64).mean(axis=0)
    pruned = preds[:, SPARSITIES.index(0.9)].astype(np.float64).mean(axis=0)
    assert np.array_equal(pie_scores(preds, SPARSITIES).scores, rowwise_spearman(dense, pruned))
    l1 = find_pies(pie_scores(preds, SPARSITIES, measure="l1"), ids, percentile=10)
    far = l1_distance(dense, pruned)
    assert set(np.flatnonzero(l1.is_pie)) == set(np.flatnonzero(-far <= np.percentile(-far, 10)))
    assert l1.ranks[np.argmax(far)] == 1  # the farthest image is the first PIE
    summary = l1.summary()
    assert summary["measure"] == "l1" and "L1 distance" in summary["measure_description"]
    assert find_pies(pie_scores(preds, SPARSITIES), ids).summary()["measure"] == "spearman"


def test_runs_take_the_measure() -> None:
    assert RunParams().measure == "spearman"
    assert RunParams(measure="jensen-shannon").options()["measure"] == "jensen-shannon"
    with pytest.raises(ValidationError, match="measure"):
        RunParams(measure="cosine")


def test_cli_pies_measure(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from backend.cli import app as cli
    from ml.pieset_file import parse_pieset_csv
    from tests.ml.test_store import write_reference

    values = write_reference(tmp_path / "ref", np.random.default_rng(5), n=40)
    runner = CliRunner()
    store = tmp_path / "store"
    assert (
        runner.invoke(
            cli, ["ml", "import-reference", str(tmp_path / "ref"), "--out", str(store)]
        ).exit_code
        == 0
    )
    out = tmp_path / "pies.csv"
    r = runner.invoke(
        cli,
        ["ml", "pies", str(store), "--out", str(out), "--measure", "kendall", "--percentile", "10"],
    )
    assert r.exit_code == 0, r.output
    assert "kendall score" in r.output
    dense = values[:, 0].mean(axis=0)
    pruned = values[:, SPARSITIES.index(0.9)].mean(axis=0)
    tau = scipy_kendall(dense, pruned)
    expected = {f"row-{i:06d}" for i in np.flatnonzero(tau <= np.nanpercentile(tau, 10))}
    rows = parse_pieset_csv(out.read_text()).rows
    assert {row.image for row in rows if row.is_pie} == expected
    assert json.loads(out.with_suffix(".json").read_text())["measure"] == "kendall"
    bad = runner.invoke(cli, ["ml", "pies", str(store), "--out", str(out), "--measure", "cosine"])
    assert bad.exit_code == 2 and "cosine" in bad.output
