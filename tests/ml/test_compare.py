"""Comparing PIE sets and stores: Jaccard of the PIE sets, correlation of the scores, curves."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from backend.cli import app as cli
from ml.analysis.synthetic import synthetic_store
from ml.compare import compare, from_pies_csv, from_store, write_comparison
from ml.pies import find_pies, pie_scores, write_pie_set


def read_pies(path: Path) -> tuple[set[str], dict[str, float]]:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return {r["image"] for r in rows if r["is_pie"] == "1"}, {
        r["image"]: float(r["score"]) for r in rows if r["score"]
    }


def test_two_k_stars_of_one_store_compare_as_their_pie_files_say(tmp_path: Path) -> None:
    store = synthetic_store(tmp_path / "store", seeds=4, images=600, classes=8)
    files = []
    for k in (0.8, 0.9):
        result = find_pies(
            pie_scores(store.predictions, store.meta.sparsities, k), store.meta.image_ids
        )
        files.append(tmp_path / f"pies-{k}.csv")
        write_pie_set(result, files[-1])
    runner = CliRunner()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = runner.invoke(cli, ["ml", "compare", str(tmp_path / "store"), str(tmp_path / "store"),
                                "--k-star", "0.8", "--k-star", "0.9", "--out", str(tmp_path / "cmp")])  # fmt: skip
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    [p] = data["pairs"]
    (pies_a, scores_a), (pies_b, scores_b) = read_pies(files[0]), read_pies(files[1])
    assert p["jaccard"] == pytest.approx(len(pies_a & pies_b) / len(pies_a | pies_b))
    assert (p["pies_a"], p["pies_b"], p["pies_both"]) == (
        len(pies_a),
        len(pies_b),
        len(pies_a & pies_b),
    )
    ids = sorted(scores_a)
    want = stats.spearmanr([scores_a[i] for i in ids], [scores_b[i] for i in ids]).statistic
    assert p["spearman"] == pytest.approx(want, abs=1e-12) and 0 < p["jaccard"] < 1
    assert "k*=0.8" in p["a"] and "k*=0.9" in p["b"] and "Jaccard" in r.output
    svg = (tmp_path / "cmp" / "curves.svg").read_text()
    assert "<text" in svg and "median mAP" in svg  # editable text, not outlines
    assert (tmp_path / "cmp" / "curves.png").stat().st_size > 5000
    assert (tmp_path / "cmp" / "pairs.csv").read_text().startswith("a,b,common_images,")
    # the same store's two curves are one: it is the PIE scores that differ
    curves = list(data["curves"].values())
    assert curves[0]["median_map"] == curves[1]["median_map"]


def test_a_pie_file_against_a_store_over_the_images_both_have(tmp_path: Path) -> None:
    store = synthetic_store(tmp_path / "store", seeds=3, images=400, classes=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = from_store(tmp_path / "store", label="store")
    part = tmp_path / "part.csv"
    keep = store.meta.image_ids[:150]
    with part.open("w") as f:
        f.write("image,is_pie,score\n")
        for image, pie, score in zip(keep, whole.is_pie[:150], whole.scores[:150], strict=True):
            f.write(f"{image},{int(pie)},{float(score)!r}\n")
    result = compare([whole, from_pies_csv(part)])
    [p] = result["pairs"]
    assert p["common_images"] == 150 and p["spearman"] == pytest.approx(1.0)
    assert p["jaccard"] == (1.0 if whole.is_pie[:150].any() else None)
    assert [i["has_curves"] for i in result["items"]] == [True, False]
    written = write_comparison(result, tmp_path / "out")
    assert {w.name for w in written} == {
        "comparison.json", "pairs.csv", "curves.png", "curves.svg", "curves.csv",
    }  # fmt: skip


def test_what_cannot_be_compared_is_named(tmp_path: Path) -> None:
    synthetic_store(tmp_path / "store", seeds=2, images=200, classes=5)
    other = tmp_path / "other.csv"
    other.write_text("image,is_pie,score\nnot-there,1,0.1\nnor-this,0,0.5\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        item = from_store(tmp_path / "store")
    with pytest.raises(ValueError, match="two or more"):
        compare([item])
    with pytest.raises(ValueError, match="share no image"):
        compare([item, from_pies_csv(other)])
    with pytest.raises(ValueError, match="one label"):
        compare([item, item])
    bad = tmp_path / "bad.csv"
    bad.write_text("image,is_pie,score\na,maybe,0.1\n")
    with pytest.raises(ValueError, match=r"bad\.csv: line 2: must be 0 or 1"):
        from_pies_csv(bad)
    r = CliRunner().invoke(cli, ["ml", "compare", str(tmp_path / "store"), str(tmp_path / "nope"),
                                 "--out", str(tmp_path / "x")])  # fmt: skip
    assert r.exit_code == 2 and "neither a prediction store folder nor a PIE set file" in r.output
    r = CliRunner().invoke(cli, ["ml", "compare", str(tmp_path / "store"), str(other),
                                 "--k-star", "0.8", "--k-star", "0.9", "--out", str(tmp_path / "x")])  # fmt: skip
    assert r.exit_code == 2 and "2 --k-star values for 1 stores" in r.output
    assert np.isfinite(item.scores).any()
