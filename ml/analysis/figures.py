"""Figures like the paper's, and better: each saved as PNG, as SVG whose text stays text
(editable), and as CSV of the numbers it draws. Q1 and Q2 here; Q3, Q4 and the PIE scores in
ml.analysis.figures_pies.

- Fig. 1: median mAP by sparsity with the seeds' interquartile and full range, the first
  significant drop, and the weight-magnitude histogram (or why there is none).
- Fig. 2: the forgettability curves of every class in one overview coloured by log training
  frequency, with a colour bar; and one small panel per class, most frequent first, each with
  the seeds' spread (interquartile and full range).
- Fig. 3: first sparsity below -20% and change at the largest sparsity against log training
  frequency: class names, the least-squares line, Pearson r, Spearman rho and their P; the
  classes left out are named, with the reason.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ml.analysis.core import DROP, Forgettability, Overall
from ml.fileio import atomic_write

Row = dict[str, Any]


def _cell(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return "" if math.isnan(float(v)) else float(v)
    return v


def save(fig: Figure, out: Path, name: str, rows: Sequence[Row]) -> Path:
    """out/name.png, out/name.svg (text as text) and out/name.csv (`rows`); the PNG's path."""
    out.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(out / f"{name}.svg", bbox_inches="tight")
    fig.savefig(out / f"{name}.png", dpi=130, bbox_inches="tight")
    plt.close(fig)
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in r.items()} for r in rows)
    atomic_write(out / f"{name}.csv", buffer.getvalue())
    return out / f"{name}.png"


def _bands(
    ax: Any,
    x: Sequence[float] | np.ndarray,
    values: np.ndarray,
    colour: Any,
    label: str | None = None,
) -> None:
    """Median line with the interquartile (darker) and full (lighter) range across axis 0."""
    with np.errstate(invalid="ignore"), _quiet():
        lo, q1, med, q3, hi = np.nanpercentile(values, [0, 25, 50, 75, 100], axis=0)
    ax.fill_between(x, lo, hi, color=colour, alpha=0.12, lw=0)
    ax.fill_between(x, q1, q3, color=colour, alpha=0.3, lw=0)
    ax.plot(x, med, color=colour, lw=1.4, label=label)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silences numpy's warnings about all-NaN slices (classes without test positives)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def fig1_overall(
    o: Overall, hist: tuple[np.ndarray, np.ndarray] | None, out: Path, why_no_hist: str
) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    k = np.array(o.sparsities)
    _bands(axes[0], k, o.map_grid, "C0", f"median of {o.map_grid.shape[0]} seeds")
    axes[0].fill_between([], [], color="C0", alpha=0.3, label="interquartile range")
    axes[0].fill_between([], [], color="C0", alpha=0.12, label="full range")
    if o.first_significant_k is not None:
        axes[0].axvline(o.first_significant_k, ls="--", c="red",
                        label=f"first significant drop ({o.first_significant_k:.0%}, P < {o.alpha:g})")  # fmt: skip
    axes[0].set(xlabel="sparsity", ylabel="mAP", title="mAP by sparsity")
    axes[0].legend(fontsize=8)
    rows: list[Row] = []
    q = np.percentile(o.map_grid, [0, 25, 50, 75, 100], axis=0)
    for i, kk in enumerate(k):
        rows.append({"figure": "mAP", "k": float(kk), "min": q[0, i], "q1": q[1, i], "median": q[2, i],
                     "q3": q[3, i], "max": q[4, i], "welch_p": o.welch[i].p})  # fmt: skip
    if hist is not None:
        counts, edges = hist
        axes[1].stairs(counts, edges, fill=True)
        axes[1].set(
            xscale="log", xlabel="|w|", ylabel="weights", title="weight magnitudes (dense model)"
        )
        rows += [{"figure": "weights", "k": None, "min": float(edges[i]), "max": float(edges[i + 1]),
                  "median": float(c)} for i, c in enumerate(counts)]  # fmt: skip
    else:
        axes[1].text(
            0.5, 0.5, f"weight magnitudes: {why_no_hist}", ha="center", va="center", wrap=True
        )
        axes[1].set_axis_off()
    return save(fig, out, "fig1_map_and_weights", [{**dict.fromkeys(rows[0]), **r} for r in rows])


def _order_by_frequency(f: Forgettability) -> list[int]:
    return sorted(
        range(len(f.classes)), key=lambda i: (-f.classes[i].train_count, f.classes[i].name)
    )


def fig2_overview(f: Forgettability, sparsities: Sequence[float], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8.5, 5))
    counts = np.array([max(c.train_count, 1) for c in f.classes], dtype=float)
    logf = np.log10(counts)
    norm = matplotlib.colors.Normalize(vmin=logf.min(), vmax=max(logf.max(), logf.min() + 1e-9))
    cmap = plt.get_cmap("viridis")
    rows: list[Row] = []
    for ci in _order_by_frequency(f):
        cls = f.classes[ci]
        curve = f.curves[:, ci]
        if not np.isnan(curve).all():
            ax.plot(sparsities, curve, color=cmap(norm(logf[ci])), lw=1.2)
        rows += [{"class": cls.name, "train_count": cls.train_count, "k": float(k), "median_change": curve[i]}
                 for i, k in enumerate(sparsities)]  # fmt: skip
    ax.axhline(DROP, ls="--", c="grey", lw=0.8)
    ax.set(
        xlabel="sparsity",
        ylabel="median relative change in AP",
        title="forgettability curves of every class",
    )
    bar = fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax)
    bar.set_label("log10 training images of the class")
    return save(fig, out, "fig2_forgettability_curves", rows)


def fig2_by_class(
    f: Forgettability, sparsities: Sequence[float], rel: np.ndarray, out: Path
) -> Path:
    """rel: each seed's relative change in AP, [S, K, C]."""
    order = _order_by_frequency(f)
    cols = 5
    rows_n = max(1, math.ceil(len(order) / cols))
    fig, axes = plt.subplots(
        rows_n, cols, figsize=(3.0 * cols, 2.3 * rows_n), squeeze=False, sharex=True
    )
    finite = rel[np.isfinite(rel)]
    low = min(float(np.percentile(finite, 1)) if finite.size else -1.0, -1.0)
    rows: list[Row] = []
    for j, ci in enumerate(order):
        ax, cls = axes[j // cols, j % cols], f.classes[ci]
        ax.set_title(f"{cls.name} (n={cls.train_count})", fontsize=8.5)
        ax.axhline(DROP, ls="--", c="grey", lw=0.7)
        ax.tick_params(labelsize=7)
        values = rel[:, :, ci]
        if np.isnan(values).all():
            ax.text(
                0.5,
                0.5,
                "no test positives:\nno curve",
                ha="center",
                va="center",
                fontsize=8,
                transform=ax.transAxes,
            )
        else:
            _bands(ax, sparsities, values, "C0")
            ax.set_ylim(low, max(0.3, float(np.nanmax(values)) + 0.05))
        with np.errstate(invalid="ignore"), _quiet():
            q = np.nanpercentile(values, [0, 25, 50, 75, 100], axis=0)
        rows += [{"class": cls.name, "train_count": cls.train_count, "k": float(k), "min": q[0, i],
                  "q1": q[1, i], "median": q[2, i], "q3": q[3, i], "max": q[4, i]}
                 for i, k in enumerate(sparsities)]  # fmt: skip
    for j in range(len(order), rows_n * cols):
        axes[j // cols, j % cols].set_axis_off()
    fig.suptitle(f"relative change in AP by sparsity, most frequent class first: median of {rel.shape[0]} seeds, "
                 "interquartile (dark) and full (light) range", fontsize=10)  # fmt: skip
    fig.tight_layout()
    return save(fig, out, "fig2b_forgettability_by_class", rows)


def fig3_vs_frequency(f: Forgettability, out: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    logf = np.array([math.log10(c.train_count) if c.train_count else np.nan for c in f.classes])
    first = np.array([np.nan if c.first_k_below is None else c.first_k_below for c in f.classes])
    last = np.array([np.nan if c.value_at_max is None else c.value_at_max for c in f.classes])
    rows: list[Row] = []
    for ax, y, corr, what in (
        (axes[0], first, f.first_k_vs_freq, "first sparsity more than 20% below the dense AP"),
        (axes[1], last, f.value_at_max_vs_freq, f"relative change in AP at {f.max_k:.0%}"),
    ):
        ok = np.isfinite(logf) & np.isfinite(y)
        ax.scatter(logf[ok], y[ok], s=18)
        for i in np.flatnonzero(ok):
            ax.annotate(
                f.classes[i].name,
                (logf[i], y[i]),
                fontsize=6.5,
                xytext=(3, 2),
                textcoords="offset points",
            )
        if ok.sum() >= 2 and np.ptp(logf[ok]) > 0:
            slope, icept = np.polyfit(logf[ok], y[ok], 1)
            xs = np.linspace(logf[ok].min(), logf[ok].max(), 2)
            ax.plot(
                xs,
                icept + slope * xs,
                c="C3",
                lw=1.2,
                label=f"least squares: y = {icept:.3f} + {slope:.3f} x",
            )
            ax.legend(fontsize=7, loc="best")
        stats_line = (
            f"r = {corr.pearson_r:.2f} (P = {corr.pearson_p:.2g}), rho = {corr.spearman_rho:.2f} (P = {corr.spearman_p:.2g}), n = {corr.n}"
            if corr.spearman_rho is not None and corr.pearson_r is not None
            else f"no correlation: {corr.n} classes with a value"
        )
        ax.set(xlabel="log10 training images of the class", ylabel=what, title=stats_line)
        ax.title.set_fontsize(9)
        left_out = [_why_left_out(c, y[i], logf[i]) for i, c in enumerate(f.classes) if not ok[i]]
        if left_out:
            ax.text(
                0,
                -0.2,
                "left out: " + "; ".join(left_out),
                transform=ax.transAxes,
                fontsize=7,
                va="top",
                wrap=True,
            )
        rows += [{"measure": what, "class": c.name, "train_count": c.train_count, "log10_train": logf[i],
                  "value": y[i], "included": bool(ok[i])} for i, c in enumerate(f.classes)]  # fmt: skip
    return save(fig, out, "fig3_forgettability_vs_frequency", rows)


def _why_left_out(c: Any, value: float, logf: float) -> str:
    if not math.isfinite(logf):
        return f"{c.name} (no training image)"
    if c.test_count == 0:
        return f"{c.name} (no test positive)"
    return (
        f"{c.name} (never 20% below)"
        if c.first_k_below is None and math.isnan(value)
        else f"{c.name} (undefined)"
    )


def overlaid_curves(curves: dict[str, dict[str, Any]], out: Path) -> list[Path]:
    """Forgettability curves of several stores overlaid (ml.compare): the median mAP, then one
    small panel per class (the classes of the first store, in its order), one line per store."""
    labels = list(curves)
    classes = list(curves[labels[0]]["classes"])
    cols = 5
    rows_n = 1 + math.ceil(len(classes) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.0 * cols, 2.4 * rows_n), squeeze=False)
    colours = plt.cm.tab10(np.arange(len(labels)) % 10)
    top = axes[0, 0]
    rows: list[Row] = []
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
                rows += [{"item": label, "class": name, "k": k, "median_change": v}
                         for k, v in zip(curves[label]["sparsities"], y, strict=True)]  # fmt: skip
        ax.axhline(DROP, ls="--", c="grey", lw=0.8)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    for j in range(len(classes), (rows_n - 1) * cols):
        axes[1 + j // cols, j % cols].set_axis_off()
    fig.suptitle("relative change in AP by sparsity (median across seeds)", fontsize=11)
    fig.tight_layout()
    png = save(fig, out, "curves", rows)
    return [png, png.with_suffix(".svg"), png.with_suffix(".csv")]
