"""Every analysis report and its JSON say where they come from, and their HTML escapes once."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from ml.analysis.provenance import headline
from ml.analysis.report import analyze, write_report
from ml.analysis.synthetic import synthetic_store, train_counts_for
from ml.store import PredictionStore, StoreMeta, StoreWriter
from tests.htmlcheck import escaped_twice


def restamped(store: PredictionStore, out: Path, **changes: object) -> PredictionStore:
    """The same predictions under another manifest (a run's model and pruning settings)."""
    m = store.meta
    meta = StoreMeta(
        m.dataset, m.classes, m.image_ids, m.seeds, m.sparsities,
        changes.get("model", m.model), changes.get("pruning", m.pruning),  # type: ignore[arg-type]
        changes.get("notes", m.notes),  # type: ignore[arg-type]
    )  # fmt: skip
    with StoreWriter(out, meta, store.labels) as w:
        for s in range(len(m.seeds)):
            for k in range(len(m.sparsities)):
                w.write(s, k, store.predictions[s, k])
        return w.commit()


def test_the_report_states_its_provenance_and_escapes_once(tmp_path: Path) -> None:
    base = synthetic_store(tmp_path / "base", seeds=3, images=300, classes=6)
    model = {
        "name": "resnet50", "image_size": 256, "pretrained": "/weights/resnet50-imagenet.pth",
        "max_epochs": 30, "batch_size": 256, "lr": 1e-4, "epochs_run": {"0": 7, "1": 9, "2": 8},
    }  # fmt: skip
    notes = {**base.meta.notes, "split_sizes": {"train": 2100, "val": 300}}
    plain = restamped(base, tmp_path / "plain", model=model, notes=notes,
                      pruning={"method": "l1", "min_keep": 0.0, "scope": "Conv2d and Linear weights"})  # fmt: skip
    global_mp = restamped(base, tmp_path / "mp", model=model, notes=notes,
                          pruning={"method": "l1", "min_keep": 0.0005, "scope": "Conv2d and Linear weights"})  # fmt: skip
    counts = train_counts_for(base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = analyze(plain, counts, provenance_extra={"run_id": 12})
        b = analyze(global_mp, counts, k_star=0.8, measure="l1")
        pages = [write_report(x, tmp_path / f"rep-{i}").read_text() for i, x in enumerate((a, b))]
    p = a.provenance
    assert p["run_id"] == 12 and p["dataset"] == "synthetic-store"
    assert p["split_sizes"] == {"train": 2100, "val": 300, "test": 300}
    assert (
        p["model"]["name"] == "resnet50"
        and p["model"]["pretrained"] == "yes: resnet50-imagenet.pth"
    )
    assert p["model"]["epochs"] == "7-9 per seed (at most 30, early stopping)"
    assert p["seeds"] == [0, 1, 2] and p["pruning"]["min_keep"] == 0.0
    assert p["pie_score"] == {"measure": "spearman", "k_star": 0.9, "percentile": 5.0}
    assert {"piestudy", "torch", "numpy", "scipy", "Python"} <= set(p["software"])
    # told apart at a glance: the headline names what differs
    one, two = headline(a.provenance), headline(b.provenance)
    assert one.startswith("run 12 · resnet50 (pretrained), 3 seeds · global L1 pruning ·")
    assert "every layer keeps 0.0500%" in two and "every layer keeps" not in one
    assert "spearman PIE score at k* = 0.9" in one and "l1 PIE score at k* = 0.8" in two
    for page, analysis in zip(pages, (a, b), strict=True):
        assert escaped_twice(page) == []
        assert headline(analysis.provenance) in page.replace("&#x27;", "'")
        assert 'id="provenance"' in page.replace("'", '"')
        assert "first k below \u221220%" in page  # the minus sign, once
    data = json.loads((tmp_path / "rep-1" / "analysis.json").read_text())
    assert data["provenance"]["pruning"]["min_keep"] == 0.0005
    assert data["settings"] == two


def test_a_store_that_records_nothing_says_so(tmp_path: Path) -> None:
    store = synthetic_store(tmp_path / "s", seeds=2, images=200, classes=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = analyze(store, train_counts_for(store)).provenance
    assert p["model"]["pretrained"] == "not recorded" and p["model"]["epochs"] == "not recorded"
    assert "initialisation not recorded" in headline(p)


def test_the_twice_escaped_check_catches_what_it_looks_for() -> None:
    assert escaped_twice("first k below &amp;minus;20% &amp;#8722; &amp;#x2212;") == [
        "minus", "#8722", "#x2212",
    ]  # fmt: skip
    assert escaped_twice("AT&amp;T &minus; &lt;b&gt; a &amp; b") == []
