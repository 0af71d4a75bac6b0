"""The analysis as a library: the README's example runs as written, on a store the README's own
commands make, and gives the numbers of `ml report`."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from backend.cli import app as cli
from ml.analysis.library import analyze_store, training_counts
from ml.analysis.report import analyze
from ml.analysis.synthetic import synthetic_store, train_counts_for

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- library-example -->\n```python\n(.*?)```", text, re.DOTALL)
    assert found, "the README's library example is missing"
    return found.group(1)


@pytest.mark.slow
def test_the_readme_example_runs_on_a_store_of_the_readme_commands(tmp_path: Path) -> None:
    var = tmp_path / "var"
    synth = var / "synth"
    labels = [str(synth / f"synthetic-cxr-lt_labels_{s}.csv") for s in ("train", "val", "test")]
    runner = CliRunner()
    for args in (
        ["ml", "synth", "--out", str(synth), "--n", "400", "--size", "32"],
        ["ml", "train", "--format", "nih-cxr-lt", "--labels", labels[0], "--labels", labels[1],
         "--images", str(synth / "images"), "--out", str(var / "run"), "--seeds", "0,1",
         "--model", "smallcnn", "--image-size", "32", "--epochs", "1", "--lr", "1e-3", "--device", "cpu"],
        ["ml", "prune-predict", str(var / "run"), "--format", "nih-cxr-lt", "--labels", labels[2],
         "--images", str(synth / "images"), "--out", str(var / "store"), "--device", "cpu"],
        ["ml", "report", str(var / "store"), "--out", str(var / "cli-report"),
         "--train-labels", labels[0], "--run", str(var / "run")],
    ):  # fmt: skip
        r = runner.invoke(cli, args)
        assert r.exit_code == 0, r.output
    code = readme_example().replace('"var/', f'"{var}/')
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scope: dict[str, object] = {}
        exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    a = scope["a"]
    assert (var / "report" / "report.html").is_file() and (
        var / "report" / "analysis.json"
    ).is_file()
    ours = json.loads((var / "report" / "analysis.json").read_text())
    cli_made = json.loads((var / "cli-report" / "analysis.json").read_text())
    for key in (
        "overall",
        "forgettability",
        "pairs",
        "pies",
        "pie_characteristics",
        "weight_histogram",
    ):
        assert ours[key] == cli_made[key], key  # the same numbers as `ml report`
    assert (
        ours["provenance"]["split_sizes"]["train"]
        == cli_made["provenance"]["split_sizes"]["train"]
        > 0
    )
    t = a.tables()  # type: ignore[attr-defined]
    assert list(t["map"]["median_map"]) == pytest.approx(ours["overall"]["median_map"])
    assert (
        len(t["pies"]) == ours["shape"]["images"]
        and t["pies"]["is_pie"].sum() == ours["pies"]["pies"]
    )
    assert "smallcnn" in printed.getvalue()


def test_analyze_store_equals_analyze_and_its_tables_hold_the_numbers(tmp_path: Path) -> None:
    store = synthetic_store(tmp_path / "s", seeds=3, images=400, classes=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = analyze_store(tmp_path / "s")  # a synthetic store carries its training counts
        b = analyze(store, train_counts_for(store))
        named = analyze_store(
            store, train_counts=dict(zip(store.meta.classes, train_counts_for(store), strict=True))
        )
    for x in (a, named):
        assert json.dumps(x.to_json()["overall"]) == json.dumps(b.to_json()["overall"])
        assert np.array_equal(x.pies.scores, b.pies.scores, equal_nan=True)
    t = a.tables()
    classes = t["classes"].set_index("class")
    for c in a.forgettability.classes:
        want = c.first_k_below
        got = classes.loc[c.name, "first_k_below_20pct"]
        assert (want is None and math.isnan(got)) or got == want
    assert len(t["pairs"]) == 15 and list(t["pies"]["score"]) == sorted(t["pies"]["score"])
    assert t["pies"]["is_pie"].sum() == a.pies.is_pie.sum()


def test_training_counts_name_what_is_wrong(tmp_path: Path) -> None:
    classes = ("a", "b")
    assert training_counts(classes, counts={"a": 3, "b": 4, "c": 1}) == ([3, 4], None)
    assert training_counts(classes, counts=[1, 2]) == ([1, 2], None)
    with pytest.raises(ValueError, match="lack: b"):
        training_counts(classes, counts={"a": 3})
    with pytest.raises(ValueError, match="3 training counts for 2 classes"):
        training_counts(classes, counts=[1, 2, 3])
    with pytest.raises(ValueError, match="give the training label counts"):
        training_counts(classes)
    path = tmp_path / "counts.json"
    path.write_text('{"a": 5, "b": 6}')
    assert training_counts(classes, counts=path) == ([5, 6], None)
