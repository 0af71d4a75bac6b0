"""Figures like the paper's Fig. 1-5, each saved as PNG and SVG."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ml.analysis.core import Forgettability, Overall, Pairs, PieCharacteristics


def _save(fig: Figure, out: Path, name: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text: editable
        fig.savefig(out / f"{name}.svg", bbox_inches="tight")
    fig.savefig(out / f"{name}.png", dpi=130, bbox_inches="tight")
    plt.close(fig)
    return out / f"{name}.png"


def fig1_overall(o: Overall, hist: tuple[np.ndarray, np.ndarray] | None, out: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    k = np.array(o.sparsities)
    q1, q3 = np.percentile(o.map_grid, [25, 75], axis=0)
    axes[0].fill_between(k, q1, q3, alpha=0.25, label="IQR across seeds")
    axes[0].plot(k, o.median_map, marker="o", label="median mAP")
    if o.first_significant_k is not None:
        axes[0].axvline(
            o.first_significant_k,
            ls="--",
            c="red",
            label=f"first significant drop ({o.first_significant_k:.0%})",
        )
    axes[0].set(xlabel="sparsity", ylabel="mAP", title="mAP vs sparsity")
    axes[0].legend(fontsize=8)
    if hist is not None:
        counts, edges = hist
        axes[1].stairs(counts, edges, fill=True)
        axes[1].set(
            xscale="log", xlabel="|w|", ylabel="weights", title="weight magnitudes (dense model)"
        )
    else:
        axes[1].text(
            0.5, 0.5, "weight magnitudes: no trained model\n(predictions imported without weights)",
            ha="center", va="center",
        )  # fmt: skip
        axes[1].set_axis_off()
    return _save(fig, out, "fig1_map_and_weights")


def fig2_curves(f: Forgettability, sparsities: tuple[float, ...], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5))
    counts = np.array([max(c.train_count, 1) for c in f.classes], dtype=float)
    colors = plt.cm.viridis(
        (np.log10(counts) - np.log10(counts).min()) / max(np.ptp(np.log10(counts)), 1e-9)
    )
    for ci, cls in enumerate(f.classes):
        if not np.isnan(f.curves[:, ci]).all():
            ax.plot(sparsities, f.curves[:, ci], color=colors[ci], lw=1.2, label=cls.name)
    ax.axhline(-0.2, ls="--", c="grey")
    ax.set(
        xlabel="sparsity",
        ylabel="median relative change in AP",
        title="forgettability curves (colour: log train frequency)",
    )
    ax.legend(fontsize=6, ncol=2, loc="lower left")
    return _save(fig, out, "fig2_forgettability_curves")


def fig3_vs_frequency(f: Forgettability, out: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    logf = np.array([np.log10(c.train_count) if c.train_count else np.nan for c in f.classes])
    first = np.array(
        [c.first_k_below if c.first_k_below is not None else np.nan for c in f.classes]
    )
    last = np.array([c.value_at_max if c.value_at_max is not None else np.nan for c in f.classes])
    for ax, y, corr, title in (
        (axes[0], first, f.first_k_vs_freq, "first sparsity with > 20% AP drop"),
        (axes[1], last, f.value_at_max_vs_freq, f"relative AP change at {f.max_k:.0%}"),
    ):
        ax.scatter(logf, y)
        rho = (
            f"rho = {corr.spearman_rho:.2f} (P = {corr.spearman_p:.3g})"
            if corr.spearman_rho is not None
            else "n/a"
        )
        ax.set(xlabel="log10 training frequency", ylabel=title, title=rho)
    return _save(fig, out, "fig3_forgettability_vs_frequency")


def fig4_pairs(p: Pairs, out: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].scatter(p.dlogfreq, p.fcd, s=10, c=p.iou_quarter, cmap="magma")
    axes[0].set(
        xlabel="|difference in log test frequency|",
        ylabel="FCD",
        title="FCD vs frequency difference",
    )
    axes[1].scatter(p.iou_quarter, p.fcd, s=10, c=p.dlogfreq, cmap="viridis")
    axes[1].set(xlabel="IoU^(1/4)", ylabel="FCD", title="FCD vs co-occurrence")
    return _save(fig, out, "fig4_fcd")


def fig5_pies(c: PieCharacteristics, out: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [3, 1]})
    axes[0].bar(range(len(c.classes)), np.nan_to_num(c.class_ratio))
    axes[0].set_xticks(range(len(c.classes)), c.classes, rotation=70, ha="right", fontsize=7)
    axes[0].axhline(1, ls=":", c="k")
    axes[0].set(ylabel="prevalence in PIEs / non-PIEs", title="class prevalence ratio")
    axes[1].bar(c.finding_bins, np.nan_to_num(c.bin_ratio))
    axes[1].axhline(1, ls=":", c="k")
    axes[1].set(xlabel="findings per image", title="number of findings ratio")
    return _save(fig, out, "fig5_pie_characteristics")


def overlaid_curves(curves: dict[str, dict[str, Any]], out: Path) -> list[Path]:
    """Forgettability curves of several stores overlaid: the median mAP, then one small panel
    per class (the classes of the first store, in its order), one line per store."""
    labels = list(curves)
    classes = list(curves[labels[0]]["classes"])
    cols = 5
    rows = 1 + math.ceil(len(classes) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.4 * rows), squeeze=False)
    colours = plt.cm.tab10(np.arange(len(labels)) % 10)
    top = axes[0, 0]
    for colour, label in zip(colours, labels, strict=True):
        c = curves[label]
        if c["median_map"] is not None:
            top.plot(c["sparsities"], c["median_map"], color=colour, lw=1.5, label=label)
    top.set(title="median mAP", xlabel="sparsity")
    for ax in axes[0, 1:]:
        ax.set_axis_off()
    handles, names = top.get_legend_handles_labels()
    axes[0, 1].legend(handles, names, loc="center left", fontsize=8, frameon=False)
    for i, name in enumerate(classes):
        ax = axes[1 + i // cols, i % cols]
        for colour, label in zip(colours, labels, strict=True):
            values = curves[label]["classes"].get(name)
            if values is not None:
                y = np.array([np.nan if v is None else v for v in values], dtype=float)
                ax.plot(curves[label]["sparsities"], y, color=colour, lw=1.2)
        ax.axhline(-0.2, ls="--", c="grey", lw=0.8)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    for j in range(len(classes), (rows - 1) * cols):
        axes[1 + j // cols, j % cols].set_axis_off()
    fig.suptitle("relative change in AP by sparsity (median across seeds)", fontsize=11)
    fig.tight_layout()
    png = _save(fig, out, "curves")
    return [png, png.with_suffix(".svg")]
