"""The analysis as a library, for notebooks: one call on a prediction store.

    from ml.analysis.library import analyze_store

    a = analyze_store("var/store", train_labels=["var/synth/synthetic-cxr-lt_labels_train.csv"])
    a.overall.first_significant_k        # the first sparsity with a significant mAP drop
    t = a.tables()                       # pandas DataFrames: "map", "classes", "pairs", "pies"
    t["classes"].sort_values("first_k_below_20pct").head()   # the classes forgotten first
    a.write_report("var/report")         # report.html, analysis.json, figures/

The numbers are those of `piestudy ml report` and of the runs (the same functions); the
training counts come from label files, a {class: count} mapping, a list in the store's class
order, or a synthetic store's own notes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ml.data.labels import LABEL_FORMATS, read_labels, require_ok
from ml.store import PredictionStore

if TYPE_CHECKING:
    import pandas as pd

    from ml.analysis.report import Analysis


def training_counts(
    classes: Sequence[str], *, label_files: Sequence[Path] | None = None,
    label_format: str = "nih-cxr-lt", split_file: Path | None = None,
    counts: Mapping[str, int] | Sequence[int] | Path | None = None,
) -> tuple[list[int], int | None]:  # fmt: skip
    """Each class's count in the training split, in `classes` order, and the size of that split
    where the label files give it. `counts`: a mapping, a JSON file of one, or a list."""
    if isinstance(counts, Path):
        counts = {str(k): int(v) for k, v in json.loads(counts.read_text()).items()}
    if isinstance(counts, Mapping):
        missing = [c for c in classes if c not in counts]
        if missing:
            raise ValueError(f"the training counts lack: {', '.join(missing)}")
        return [int(counts[c]) for c in classes], None
    if counts is not None:
        if len(counts) != len(classes):
            raise ValueError(f"{len(counts)} training counts for {len(classes)} classes")
        return [int(n) for n in counts], None
    if not label_files:
        raise ValueError(
            "give the training label counts: label files (--train-labels) or counts "
            "(--train-counts counts.json)"
        )
    if label_format not in LABEL_FORMATS:
        raise ValueError(f"the label format must be one of {', '.join(LABEL_FORMATS)}")
    table = require_ok(read_labels(label_format, list(label_files), split_file=split_file))
    train = [r for r in table.records if r.split == "train"]
    if not train:
        raise ValueError("the label files have no train split")
    index = {c: i for i, c in enumerate(table.classes)}
    missing = [c for c in classes if c not in index]
    if missing:
        raise ValueError(f"the label files lack the store's classes: {', '.join(missing)}")
    return [sum(r.labels[index[c]] for r in train) for c in classes], len(train)


def analyze_store(
    store: str | Path | PredictionStore, *, train_labels: Sequence[str | Path] | None = None,
    label_format: str = "nih-cxr-lt", train_counts: Mapping[str, int] | Sequence[int] | None = None,
    run: str | Path | None = None, k_star: float = 0.9, percentile: float = 5.0,
    measure: str = "spearman", alpha: float = 0.001,
) -> Analysis:  # fmt: skip
    """The paper's whole analysis of a prediction store (a folder, or one opened).
    `run`: the `ml train` folder whose first seed gives Fig. 1's weight histogram."""
    from ml.analysis.report import analyze

    opened = store if isinstance(store, PredictionStore) else PredictionStore.open(Path(store))
    classes = opened.meta.classes
    if train_counts is None and train_labels is None and "train_counts" in opened.meta.notes:
        train_counts = list(opened.meta.notes["train_counts"])  # a synthetic store's own
    counts, train_size = training_counts(
        classes, label_files=[Path(p) for p in train_labels or ()], label_format=label_format,
        counts=train_counts,
    )  # fmt: skip
    weights = None
    if run is not None:
        from ml.train import trained_weights

        weights = trained_weights(Path(run), len(classes))
    return analyze(
        opened, counts, k_star=k_star, percentile=percentile, alpha=alpha, weights=weights,
        measure=measure,
        provenance_extra={"split_sizes": {"train": train_size}} if train_size else None,
    )  # fmt: skip


def tables(a: Analysis) -> dict[str, pd.DataFrame]:
    """The analysis's numbers as DataFrames: "map" (per sparsity: median mAP, Welch t and P),
    "classes" (per class: counts, first k below -20%, change at the largest k, and the curve),
    "pairs" (per class pair: FCD, |delta log frequency|, IoU) and "pies" (per image: score, PIE
    or not, rank; lowest score first)."""
    import pandas as pd

    o, f, p, pies = a.overall, a.forgettability, a.pairs, a.pies
    by_k = pd.DataFrame({
        "k": o.sparsities, "median_map": o.median_map,
        "welch_t": [w.t for w in o.welch], "welch_p": [w.p for w in o.welch],
    })  # fmt: skip
    classes = pd.DataFrame([
        {"class": c.name, "train_count": c.train_count, "test_count": c.test_count,
         "first_k_below_20pct": c.first_k_below, f"change_at_{f.max_k:g}": c.value_at_max}
        for c in f.classes
    ])  # fmt: skip
    curves = pd.DataFrame(f.curves.T, columns=[f"change_at_{k:g}" for k in o.sparsities])
    pairs = pd.DataFrame({"a": p.a, "b": p.b, "fcd": p.fcd, "dlogfreq": p.dlogfreq, "iou": p.iou})
    images = pd.DataFrame({
        "image_id": pies.image_ids, "score": pies.scores, "is_pie": pies.is_pie, "rank": pies.ranks,
    }).sort_values("score", na_position="last", kind="stable", ignore_index=True)  # fmt: skip
    return {
        "map": by_k,
        "classes": pd.concat([classes, curves.drop(columns=curves.columns[0])], axis=1),
        "pairs": pairs,
        "pies": images,
    }
