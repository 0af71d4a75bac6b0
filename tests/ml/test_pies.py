from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.measures import rowwise_spearman
from ml.pies import PieScores, find_pies, pie_scores, write_pie_set
from ml.pieset_file import parse_pieset_csv
from ml.store import SPARSITIES

# the pandas reference warns on the constant rows these tests make on purpose
pytestmark = pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")


def pandas_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return pd.DataFrame(a).corrwith(pd.DataFrame(b), axis=1, method="spearman").to_numpy()


def test_rowwise_spearman_equals_pandas_with_ties_and_constant_rows() -> None:
    rng = np.random.default_rng(0)
    a = np.round(rng.random((500, 20)), 1)  # many ties
    b = np.round(a + rng.normal(0, 0.2, a.shape), 1)
    a[3] = 0.5  # constant rows
    b[7] = 0.25
    ours = rowwise_spearman(a, b)
    ref = pandas_reference(a, b)
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    assert np.isnan(ours[3]) and np.isnan(ours[7])
    ok = ~np.isnan(ref)
    assert np.max(np.abs(ours[ok] - ref[ok])) <= 1e-12


def test_pie_scores_average_over_seeds() -> None:
    rng = np.random.default_rng(1)
    preds = rng.random((3, 20, 50, 6)).astype(np.float32)
    scores = pie_scores(preds, SPARSITIES, k_star=0.9)
    dense = preds[:, 0].astype(np.float64).mean(axis=0)
    pruned = preds[:, SPARSITIES.index(0.9)].astype(np.float64).mean(axis=0)
    assert np.allclose(scores.scores, pandas_reference(dense, pruned), atol=1e-12)
    other = pie_scores(preds, SPARSITIES, k_star=0.5)
    assert not np.allclose(other.scores, scores.scores)
    with pytest.raises(ValueError, match="not among"):
        pie_scores(preds, SPARSITIES, k_star=0.33)
    with pytest.raises(ValueError, match=r"\[S, K, N, C\]"):
        pie_scores(preds[0], SPARSITIES)


def test_find_pies_bottom_percentile_and_undefined() -> None:
    rng = np.random.default_rng(2)
    s = rng.uniform(-1, 1, 200)
    s[[5, 9]] = np.nan
    ids = [f"img{i:03d}" for i in range(200)]
    result = find_pies(PieScores(s, 0.9), ids, percentile=5)
    defined = s[~np.isnan(s)]
    assert result.threshold == pytest.approx(np.percentile(defined, 5))
    assert int(result.is_pie.sum()) == int((defined <= result.threshold).sum()) == 10
    assert (
        not result.is_pie[5]
        and result.ranks[5] == 0
        and result.undefined_ids == ["img005", "img009"]
    )
    assert sorted(result.ranks[result.ranks > 0].tolist()) == list(range(1, 199))
    assert result.ranks[int(np.nanargmin(s))] == 1
    assert all(result.scores[result.is_pie] <= result.scores[~result.is_pie & ~np.isnan(s)].min())
    ten = find_pies(PieScores(s, 0.9), ids, percentile=10)
    assert int(ten.is_pie.sum()) == 20
    with pytest.raises(ValueError, match="percentile"):
        find_pies(PieScores(s, 0.9), ids, percentile=0)
    with pytest.raises(ValueError, match="no image"):
        find_pies(PieScores(np.full(3, np.nan), 0.9), ["a", "b", "c"])


def test_written_file_reads_back(tmp_path: Path) -> None:
    s = np.array([0.9, -0.2, np.nan, 0.4, 0.1])
    ids = ["a.png", "b,odd.png", "c.png", "d.png", "e.png"]
    result = find_pies(PieScores(s, 0.9), ids, percentile=30)
    summary_path = write_pie_set(result, tmp_path / "out" / "pies.csv", {"store": "x"})
    parsed = parse_pieset_csv((tmp_path / "out" / "pies.csv").read_text())
    assert not parsed.problems
    by_id = {r.image: r for r in parsed.rows}
    assert by_id["b,odd.png"].is_pie and by_id["b,odd.png"].rank == 1
    assert by_id["c.png"].score is None and by_id["c.png"].rank is None
    assert by_id["a.png"].score == 0.9
    summary = json.loads(summary_path.read_text())
    assert (
        summary["undefined_scores"] == 1
        and summary["store"] == "x"
        and summary["pies"] == int(result.is_pie.sum())
    )
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left


def test_scores_all_equal_are_refused_with_the_reason() -> None:
    tied = PieScores(np.full(20, 0.8), 0.9)
    with pytest.raises(
        ValueError, match=r"every defined spearman score is 0\.8, .* try another measure"
    ):
        find_pies(tied, [f"i{k}" for k in range(20)])
