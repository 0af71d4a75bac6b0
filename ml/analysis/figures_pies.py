"""Figures of Q3 and Q4, and of the PIE scores (PNG, SVG with text as text, CSV; see
ml.analysis.figures).

- Fig. 4: FCD against the difference in log frequency and against co-occurrence, coloured by the
  other with a colour bar; pairs that never co-occur are drawn hollow, apart; the OLS fit's table
  under the plots.
- Fig. 5: each class's prevalence ratio (PIEs / non-PIEs) with its 95% interval and the counts
  behind it; a ratio that is undefined (no non-PIE positive) is marked so, never drawn as 0.
- Fig. 6: the PIE scores' histogram with the PIE threshold.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import cm, colors
from matplotlib.axes import Axes

from ml.analysis.core import Pairs, PieCharacteristics
from ml.analysis.figures import Row, save
from ml.pies import PieSetResult


def fig4_pairs(p: Pairs, out: Path) -> Path:
    fig = plt.figure(figsize=(12, 6.2))
    grid = fig.add_gridspec(2, 2, height_ratios=[4, 1.4], hspace=0.55)
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])]
    apart = p.iou == 0
    for ax, x, colour_by, cmap, xlabel, clabel in (
        (axes[0], p.dlogfreq, p.iou_quarter, "magma_r", "|difference in log10 test frequency|", "IoU^(1/4) (co-occurrence)"),
        (axes[1], p.iou_quarter, p.dlogfreq, "viridis", "IoU^(1/4) (co-occurrence)", "|difference in log10 test frequency|"),
    ):  # fmt: skip
        norm = colors.Normalize(
            vmin=float(np.min(colour_by)), vmax=max(float(np.max(colour_by)), 1e-9)
        )
        ax.scatter(x[~apart], p.fcd[~apart], s=12, c=colour_by[~apart], cmap=cmap, norm=norm)
        if apart.any():
            ax.scatter(x[apart], p.fcd[apart], s=14, facecolors="none", edgecolors="grey", lw=0.8,
                       label=f"never co-occur ({int(apart.sum())} pairs)")  # fmt: skip
            ax.legend(fontsize=7, loc="best")
        fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax).set_label(clabel, fontsize=8)
        ax.set(xlabel=xlabel, ylabel="forgettability curve distance (FCD)")
    axes[0].set_title("FCD by frequency difference", fontsize=10)
    axes[1].set_title("FCD by co-occurrence", fontsize=10)
    table_ax = fig.add_subplot(grid[1, :])
    table_ax.set_axis_off()
    if p.ols is not None:
        cells = [
            [n, f"{c:.4f}", f"{s:.4f}", f"{q:.3g}"]
            for n, c, s, q in zip(p.ols.names, p.ols.coef, p.ols.se, p.ols.p, strict=True)
        ]
        table = table_ax.table(
            cellText=cells, colLabels=["OLS term", "coef", "SE", "P"], loc="center", cellLoc="right"
        )
        table.auto_set_font_size(False)
        table.set_fontsize(8)
        table_ax.set_title(
            f"FCD ~ |dlog freq| + IoU^(1/4) + |dlog freq| x IoU^(1/4): R² = {p.ols.r_squared:.3f}, n = {p.ols.n} pairs",
            fontsize=9,
        )
    else:
        table_ax.text(0.5, 0.5, "no OLS fit: too few class pairs", ha="center", va="center")
    rows: list[Row] = [{"a": a, "b": b, "fcd": float(d), "dlogfreq": float(g), "iou": float(i), "iou_quarter": float(i**0.25)}
                       for a, b, d, g, i in zip(p.a, p.b, p.fcd, p.dlogfreq, p.iou, strict=True)]  # fmt: skip
    return save(fig, out, "fig4_fcd", rows)


def _ratio_panel(ax: Axes, names: tuple[str, ...], ratio: np.ndarray, ci: np.ndarray,
                 counts: np.ndarray, n1: int, n2: int) -> None:  # fmt: skip
    """A forest plot on a log scale (ratios are multiplicative): each ratio with its interval;
    a ratio of 0 (no PIE positive) at the floor with its upper bound; undefined ones named."""
    x = np.arange(len(names))
    defined = np.isfinite(ratio)
    positive = defined & (ratio > 0)
    values = np.concatenate([ratio[positive], ci[defined].ravel()])
    values = values[np.isfinite(values) & (values > 0)]
    floor = float(values.min()) / 2 if values.size else 0.1
    ceiling = float(values.max()) * 2 if values.size else 10.0
    ax.set_yscale("log")
    ax.set_ylim(floor, ceiling)
    for i in np.flatnonzero(defined).tolist():
        low = ci[i, 0] if ci[i, 0] > 0 else floor
        ax.vlines(i, low, ci[i, 1], color="k", lw=0.9)
        if positive[i]:
            ax.plot(i, ratio[i], "o", color="C0", ms=5)
        else:
            ax.plot(i, floor, "v", color="C0", ms=6, clip_on=False)
    for i in range(len(names)):
        if not defined[i]:
            ax.text(i, math.sqrt(floor * ceiling), "undefined\n(no non-PIE\npositive)", ha="center",
                    va="center", fontsize=5.5, color="C3", rotation=90)  # fmt: skip
        label = f"{int(counts[0, i])}/{n1}\n{int(counts[1, i])}/{n2}"
        ax.annotate(label, (i, 0), xycoords=("data", "axes fraction"), xytext=(0, -3),
                    textcoords="offset points", ha="center", va="top", fontsize=5, color="dimgrey")  # fmt: skip
    ax.axhline(1, ls=":", c="k")
    ax.set_xticks(x, names, rotation=70, ha="right", fontsize=7)
    ax.tick_params(axis="x", pad=16)
    ax.set_xlim(-0.6, len(names) - 0.4)


def fig5_pies(c: PieCharacteristics, out: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 1]})
    _ratio_panel(
        axes[0], c.classes, c.class_ratio, c.class_ci, c.class_counts, c.n_pies, c.n_non_pies
    )
    axes[0].set(ylabel="prevalence among PIEs / among non-PIEs")
    axes[0].set_title(
        f"class prevalence ratio (log scale; ▼: 0, no PIE positive) with 95% interval (Katz); counts: positives among the {c.n_pies} PIEs / the {c.n_non_pies} non-PIEs",
        fontsize=9,
    )
    _ratio_panel(
        axes[1], c.finding_bins, c.bin_ratio, c.bin_ci, c.bin_counts, c.n_pies, c.n_non_pies
    )
    axes[1].set(xlabel="findings per image")
    axes[1].set_title("number of findings", fontsize=9)
    rows: list[Row] = []
    for kind, names, ratio, ci, counts in (("class", c.classes, c.class_ratio, c.class_ci, c.class_counts),
                                           ("findings", c.finding_bins, c.bin_ratio, c.bin_ci, c.bin_counts)):  # fmt: skip
        rows += [{"kind": kind, "name": n, "pie_positives": int(counts[0, i]), "pies": c.n_pies,
                  "non_pie_positives": int(counts[1, i]), "non_pies": c.n_non_pies, "ratio": ratio[i],
                  "ci_low": ci[i, 0], "ci_high": ci[i, 1]} for i, n in enumerate(names)]  # fmt: skip
    fig.tight_layout()
    return save(fig, out, "fig5_pie_characteristics", rows)


def fig6_pie_scores(pies: PieSetResult, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4))
    defined = pies.scores[np.isfinite(pies.scores)]
    edges = np.histogram_bin_edges(defined, bins=40)
    counts, _ = np.histogram(defined, bins=edges)
    below = edges[1:] <= pies.threshold
    ax.bar(
        edges[:-1],
        counts,
        width=np.diff(edges),
        align="edge",
        color=np.where(below, "C3", "C0"),
        alpha=0.85,
    )
    ax.axvline(
        pies.threshold,
        c="C3",
        ls="--",
        label=f"PIE threshold {pies.threshold:.4f} ({pies.percentile:g}th percentile)",
    )
    undefined = int((~np.isfinite(pies.scores)).sum())
    ax.set(xlabel=f"PIE score ({pies.measure}, dense against k* = {pies.k_star:g})", ylabel="images",
           title=f"{int(pies.is_pie.sum())} PIEs of {len(pies.scores)} images" + (f"; {undefined} undefined scores, not drawn" if undefined else ""))  # fmt: skip
    ax.legend(fontsize=8)
    rows: list[Row] = [{"low": float(edges[i]), "high": float(edges[i + 1]), "images": int(n), "pie_bin": bool(below[i])}
                       for i, n in enumerate(counts)]  # fmt: skip
    return save(fig, out, "fig6_pie_scores", rows)
