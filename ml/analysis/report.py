"""The whole analysis of a prediction store: numbers (JSON), figures, a self-contained HTML report."""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ml.analysis import figures, figures_pies
from ml.analysis.core import (
    Forgettability,
    Overall,
    Pairs,
    PieCharacteristics,
    forgettability,
    overall,
    pairs,
    pie_characteristics,
    relative_ap,
    weight_histogram,
)
from ml.analysis.provenance import headline, provenance
from ml.fileio import atomic_write
from ml.measures import DESCRIPTIONS
from ml.metrics import average_precision
from ml.pies import PieSetResult, find_pies, pie_scores
from ml.store import PredictionStore

# the app's report style sheet (the reader study's statistics report uses it too), inlined so
# that the file needs nothing else
_STYLES = Path(__file__).resolve().parents[2] / "frontend" / "static" / "css" / "report.css"
REPORT_STYLES = _STYLES.read_text(encoding="utf-8") if _STYLES.is_file() else ""


@dataclass(frozen=True)
class Analysis:
    store: PredictionStore
    ap: np.ndarray
    overall: Overall
    forgettability: Forgettability
    pairs: Pairs
    pies: PieSetResult
    characteristics: PieCharacteristics
    weight_hist: tuple[np.ndarray, np.ndarray] | None
    provenance: dict[str, Any]

    def tables(self) -> dict[str, Any]:
        """The numbers as pandas DataFrames (ml.analysis.library.tables)."""
        from ml.analysis.library import tables

        return tables(self)

    def to_json(self) -> dict[str, Any]:
        """What analysis.json holds."""
        return to_json(self)

    def write_report(self, out: str | Path) -> Path:
        """out/report.html, out/analysis.json and out/figures/; the report's path."""
        return write_report(self, Path(out))


def analyze(
    store: PredictionStore, train_counts: Sequence[int], *, k_star: float = 0.9, percentile: float = 5.0,
    alpha: float = 0.001, weights: Sequence[np.ndarray] | None = None, measure: str = "spearman",
    provenance_extra: Mapping[str, Any] | None = None,
) -> Analysis:  # fmt: skip
    """The paper's analysis of a store. `weights`: a trained model's prunable weights (the
    histogram of Fig. 1); `provenance_extra`: what the store does not record (a run's id, the
    sizes of its training and validation splits)."""
    classes = store.meta.classes
    if len(train_counts) != len(classes):
        raise ValueError(f"{len(train_counts)} training counts for {len(classes)} classes")
    labels = np.asarray(store.labels)
    ap = average_precision(labels, store.predictions)
    o = overall(ap, store.meta.sparsities, alpha)
    f = forgettability(
        ap, store.meta.sparsities, classes, train_counts, labels.sum(axis=0).tolist()
    )
    p = pairs(f.curves, labels, classes)
    pies = find_pies(
        pie_scores(store.predictions, store.meta.sparsities, k_star, measure),
        store.meta.image_ids,
        percentile,
    )
    c = pie_characteristics(labels, pies.is_pie, classes)
    hist = weight_histogram(weights) if weights else None
    origin = provenance(
        store, measure=measure, k_star=k_star, percentile=percentile, alpha=alpha,
        extra=provenance_extra,
    )  # fmt: skip
    return Analysis(store, ap, o, f, p, pies, c, hist, origin)


def _num(x: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, np.ndarray):
        return [_num(v) for v in x.tolist()]
    if isinstance(x, list | tuple):
        return [_num(v) for v in x]
    if isinstance(x, float | np.floating):
        return None if math.isnan(float(x)) else float(x)
    return x


def to_json(a: Analysis) -> dict[str, Any]:
    m = a.store.meta
    o, f, p, c = a.overall, a.forgettability, a.pairs, a.characteristics
    return {
        "created_at": datetime.now(UTC).isoformat(),
        "provenance": a.provenance,
        "settings": headline(a.provenance),
        "store": str(a.store.path),
        "dataset": m.dataset,
        "shape": {
            "seeds": len(m.seeds),
            "sparsities": len(m.sparsities),
            "images": len(m.image_ids),
            "classes": len(m.classes),
        },
        "classes": list(m.classes),
        "sparsities": list(m.sparsities),
        "ap": {
            "note": "AP[s, k, c]; null where a class has no test positives",
            "values": _num(a.ap),
        },
        "overall": {
            "map_per_seed_and_k": _num(o.map_grid),
            "median_map": _num(o.median_map),
            "welch": [vars(w) | {"t": _num(w.t), "p": _num(w.p)} for w in o.welch],
            "alpha": o.alpha,
            "first_significant_k": o.first_significant_k,
        },
        "forgettability": {
            "curves": {cls.name: _num(f.curves[:, i]) for i, cls in enumerate(f.classes)},
            "classes": [vars(cls) for cls in f.classes],
            "first_k_below_20pct_vs_log_train_freq": vars(f.first_k_vs_freq),
            f"value_at_{f.max_k:g}_vs_log_train_freq": vars(f.value_at_max_vs_freq),
        },
        "pairs": {
            "rows": [
                {
                    "a": x,
                    "b": y,
                    "fcd": float(d),
                    "dlogfreq": float(g),
                    "iou": float(i),
                    "iou_quarter": float(i**0.25),
                }
                for x, y, d, g, i in zip(p.a, p.b, p.fcd, p.dlogfreq, p.iou, strict=True)
            ],
            "ols": vars(p.ols) if p.ols else None,
        },
        "pies": a.pies.summary(),
        "pie_characteristics": {
            "class_ratio": dict(zip(c.classes, _num(c.class_ratio), strict=True)),
            "findings_ratio": dict(zip(c.finding_bins, _num(c.bin_ratio), strict=True)),
            "n_pies": c.n_pies,
            "n_non_pies": c.n_non_pies,
            "class_counts": {
                name: {
                    "pies": int(c.class_counts[0, i]),
                    "non_pies": int(c.class_counts[1, i]),
                    "ci95": _num(c.class_ci[i]),
                }
                for i, name in enumerate(c.classes)
            },
            "findings_counts": {
                name: {
                    "pies": int(c.bin_counts[0, i]),
                    "non_pies": int(c.bin_counts[1, i]),
                    "ci95": _num(c.bin_ci[i]),
                }
                for i, name in enumerate(c.finding_bins)
            },
            "interval": "95%, Katz's log method (0.5 added to both counts where the PIEs have none)",
        },
        "weight_histogram": {"counts": _num(a.weight_hist[0]), "edges": _num(a.weight_hist[1])}
        if a.weight_hist
        else None,
    }


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "&ndash;"
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{digits}f}"
    return html.escape(str(x))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)  # headers are ours, entities allowed
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table class='grid'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(a: Analysis, out: Path) -> Path:
    """out/report.html (figures embedded), out/analysis.json, out/figures/*.png|svg."""
    fig_dir = out / "figures"
    source = a.provenance.get("source")
    why = (
        f"this run's predictions came from a {source}, without its trained models"
        if source in ("store", "reference")
        else "no trained model given (`ml report --run RUN_DIR` draws it)"
    )
    sparsities = a.store.meta.sparsities
    pngs = [
        figures.fig1_overall(a.overall, a.weight_hist, fig_dir, why),
        figures.fig2_overview(a.forgettability, sparsities, fig_dir),
        figures.fig2_by_class(a.forgettability, sparsities, relative_ap(a.ap), fig_dir),
        figures.fig3_vs_frequency(a.forgettability, fig_dir),
        figures_pies.fig4_pairs(a.pairs, fig_dir),
        figures_pies.fig5_pies(a.characteristics, fig_dir),
        figures_pies.fig6_pie_scores(a.pies, fig_dir),
    ]
    data = to_json(a)
    atomic_write(out / "analysis.json", json.dumps(data, indent=1))
    img = {p.stem: base64.b64encode(p.read_bytes()).decode() for p in pngs}
    o, f, p, c = a.overall, a.forgettability, a.pairs, a.characteristics
    ols = ""
    if p.ols:
        ols = _table(
            ["term", "coef", "SE", "P"],
            list(zip(p.ols.names, p.ols.coef, p.ols.se, p.ols.p, strict=True)),
        )
        ols += f"<p>R² = {p.ols.r_squared:.3f}, n = {p.ols.n} class pairs</p>"
    corr = [
        ["first k below \u221220%", *(_vals(f.first_k_vs_freq))],
        [f"value at {f.max_k:.0%}", *(_vals(f.value_at_max_vs_freq))],
    ]
    sections = [
        ("Q1 · overall", f"<p>First sparsity with a significant mAP drop (Welch, P &lt; {o.alpha}): "
         f"<b>{_fmt(o.first_significant_k)}</b></p>"
         + _table(["k", "median mAP", "mean dense", "mean pruned", "t", "P"],
                  [[w.k, o.median_map[i], w.mean_dense, w.mean_pruned, w.t, w.p] for i, w in enumerate(o.welch)]),
         ["fig1_map_and_weights"]),
        ("Q2 · forgettability by class", _table(
            ["class", "train n", "test n", "first k below &minus;20%", f"change at {f.max_k:.0%}"],
            [[x.name, x.train_count, x.test_count, x.first_k_below, x.value_at_max] for x in f.classes])
         + "<h3>vs log training frequency</h3>" + _table(["measure", "n", "Pearson r", "P", "Spearman &rho;", "P"], corr),
         ["fig2_forgettability_curves", "fig2b_forgettability_by_class"]),
        ("Q2 · forgettability vs frequency", "", ["fig3_forgettability_vs_frequency"]),
        ("Q3 · pairs of classes", "<p>OLS: FCD ~ |&Delta;log freq| + IoU^&frac14; + |&Delta;log freq| &times; IoU^&frac14;</p>" + ols, ["fig4_fcd"]),
        ("Q4 · PIE characteristics", f"<p>{c.n_pies} PIEs, {c.n_non_pies} non-PIEs (PIE score: {html.escape(DESCRIPTIONS[a.pies.measure])}; k* = {a.pies.k_star}, "
         f"{a.pies.percentile:g}th percentile, threshold {a.pies.threshold:.4f}; "
         f"{len(a.pies.undefined_ids)} undefined scores)</p>"
         + _ratio_table("class", c.classes, c.class_ratio, c.class_ci, c.class_counts, c)
         + _ratio_table("findings", c.finding_bins, c.bin_ratio, c.bin_ci, c.bin_counts, c),
         ["fig5_pie_characteristics", "fig6_pie_scores"]),
    ]  # fmt: skip
    body = "".join(
        f"<section><h2>{html.escape(t)}</h2>{content}"
        + "".join(
            f"<figure><img alt='{html.escape(t)}' src='data:image/png;base64,{img[name]}'>"
            f"<figcaption><code>figures/{name}</code> .png, .svg (editable text), .csv (the "
            "numbers drawn)</figcaption></figure>"
            for name in names
        )
        + "</section>"
        for t, content, names in sections
    )
    m = a.store.meta
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pruning analysis · {html.escape(m.dataset)} · piestudy</title>
<style>{REPORT_STYLES}</style></head><body>
<main class="report" id="report">
<h1>Pruning analysis · {html.escape(m.dataset)}</h1>
<p class="settings" id="settings">{html.escape(headline(a.provenance))}</p>
<p class="muted">{len(m.seeds)} seeds &times; {len(m.sparsities)} sparsities &times; {len(m.image_ids)} images &times; {len(m.classes)} classes.
Every number is also in <code>analysis.json</code> beside this file.</p>
<section><h2 id="provenance-h">Provenance</h2>{_provenance_list(a.provenance)}</section>
{body}</main></body></html>"""
    atomic_write(out / "report.html", page)
    return out / "report.html"


def _provenance_list(p: dict[str, Any]) -> str:
    """The provenance as a definition list (nested parts flattened one level)."""
    rows = []
    for key, value in p.items():
        if isinstance(value, dict):
            value = "; ".join(f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        rows.append(f"<dt>{html.escape(key.replace('_', ' '))}</dt><dd>{_fmt(value)}</dd>")
    return f"<dl class='design' id='provenance'>{''.join(rows)}</dl>"


def _ratio_table(
    what: str, names: Sequence[str], ratio: np.ndarray, ci: np.ndarray, counts: np.ndarray,
    c: PieCharacteristics,
) -> str:  # fmt: skip
    """Prevalence ratios with their counts and 95% intervals; an undefined one says so."""
    rows = [
        [name, f"{int(counts[0, i])} / {c.n_pies}", f"{int(counts[1, i])} / {c.n_non_pies}",
         "undefined (no non-PIE positive)" if math.isnan(ratio[i]) else float(ratio[i]),
         "" if math.isnan(ci[i, 0]) else f"{ci[i, 0]:.3g} to {ci[i, 1]:.3g}"]
        for i, name in enumerate(names)
    ]  # fmt: skip
    return _table([what, "PIEs with it", "non-PIEs with it", "ratio", "95% interval (Katz)"], rows)


def _vals(c: Any) -> list[Any]:
    return [c.n, c.pearson_r, c.pearson_p, c.spearman_rho, c.spearman_p]
