"""`piestudy ml ...`: the researcher's commands (registered by backend.cli)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from ml.console import console, err, fail
from ml.data.labels import LABEL_FORMATS, LabelFormatError, read_labels, require_ok
from ml.data.synth import write_dataset
from ml.measures import Measure
from ml.models.names import ModelName
from ml.pies import find_pies, pie_scores, write_pie_set
from ml.store import PredictionStore, StoreError

# torch, torchvision and pandas are imported inside the commands that use them, so that the
# `piestudy` command (db upgrade, serve, imports) starts without loading them.
if TYPE_CHECKING:
    from ml.data.images import SplitData

app = typer.Typer(
    help="the PIE engine: data, populations, pruning, predictions, PIEs", no_args_is_help=True
)


@app.command("pies")
def pies_command(
    store: Annotated[Path, typer.Argument(help="prediction store folder")],
    out: Annotated[
        Path,
        typer.Option(help="CSV to write (image,is_pie,score,rank); a JSON summary goes beside it"),
    ],
    k_star: Annotated[
        float, typer.Option(help="the pruned sparsity compared with the dense models")
    ] = 0.9,
    percentile: Annotated[
        float, typer.Option(help="PIEs: scores at or below this percentile")
    ] = 5.0,
    measure: Annotated[
        Measure,
        typer.Option(
            help="the PIE score, oriented so that lower is more forgotten: spearman (the "
            "paper's), kendall (tau-b), l1 (minus the L1 distance), jensen-shannon (minus the "
            "distance) or flips (minus the decisions at 0.5 that change)"
        ),
    ] = "spearman",
) -> None:
    """Find the PIEs of a prediction store."""
    try:
        opened = PredictionStore.open(store)
        scores = pie_scores(
            opened.predictions, opened.meta.sparsities, k_star=k_star, measure=measure
        )
        result = find_pies(scores, opened.meta.image_ids, percentile=percentile)
    except (StoreError, ValueError) as exc:
        raise fail(str(exc)) from exc
    summary_path = write_pie_set(
        result,
        out,
        {
            "store": str(store.resolve()),
            "dataset": opened.meta.dataset,
            "seeds": list(opened.meta.seeds),
        },
    )
    s = result.summary()
    console.print(
        f"{s['pies']} PIEs of {s['images']} images ({measure} score <= {s['threshold']:.4f}, the {percentile:g}th "
        f"percentile at k*={k_star:g}); {s['undefined_scores']} undefined scores"
    )
    console.print(f"wrote {out} and {summary_path}")


@app.command("import-reference")
def import_reference_command(
    directory: Annotated[
        Path, typer.Argument(help="folder of {dataset}_resnet50_seed-{s}_prune-{k}.pkl files")
    ],
    out: Annotated[Path, typer.Option(help="prediction store folder to create")],
    labels: Annotated[
        Path | None, typer.Option(help="the test label CSV whose rows the pickles follow")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="which dataset, if the folder holds several")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing store")] = False,
) -> None:
    """Read the reference code's per-(seed, k) prediction pickles into a prediction store."""
    err.print(
        f"[yellow]note:[/yellow] unpickling the files in {directory} (only the folder you named). "
        "Pickles can run code: use this only on files you trust."
    )
    if labels is None:
        err.print(
            "[yellow]note:[/yellow] no --labels CSV given: images will be named by row number"
        )
    from ml.reference import ReferenceImportError, import_reference

    try:
        result = import_reference(
            directory, out, labels_csv=labels, dataset=dataset, overwrite=overwrite
        )
    except ReferenceImportError as exc:
        raise fail(str(exc)) from exc
    m = result.store.meta
    console.print(
        f"imported {result.files} files into {out}: {len(m.seeds)} seeds x {len(m.sparsities)} sparsities x "
        f"{len(m.image_ids)} images x {len(m.classes)} classes"
    )
    console.print(json.dumps({"dataset": m.dataset, "seeds": list(m.seeds)}))


def _progress() -> tuple[Progress, Callable[[str, int, int], None]]:
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err,
        transient=False,
    )  # fmt: skip
    tasks: dict[str, TaskID] = {}

    def update(what: str, done: int, total: int) -> None:
        if what not in tasks:
            tasks[what] = bar.add_task(what, total=total)
        bar.update(tasks[what], completed=done, total=total)

    return bar, update


def _read_split(
    labels: list[Path], fmt: str, images: Path, split_file: Path | None, split: str, size: int,
    cache_dir: Path | None = None,
) -> SplitData:  # fmt: skip
    if fmt not in LABEL_FORMATS:
        raise fail(f"--format must be one of {', '.join(LABEL_FORMATS)}")
    from ml.data.images import load_split

    try:
        table = require_ok(read_labels(fmt, labels, split_file=split_file))
        bar, update = _progress()
        with bar:
            n = sum(1 for r in table.records if r.split == split)
            done = [0]

            def tick(k: int) -> None:
                done[0] += k
                update(f"decode {split}", done[0], n)

            return load_split(table, images, split, size, tick, cache_dir=cache_dir)
    except (LabelFormatError, FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from exc


@app.command("synth")
def synth_command(
    out: Annotated[Path, typer.Option(help="folder to create: images/ and label CSVs per split")],
    n: Annotated[int, typer.Option(help="number of images")] = 2000,
    seed: Annotated[int, typer.Option()] = 0,
    size: Annotated[int, typer.Option(help="image side in pixels")] = 128,
    workers: Annotated[int, typer.Option(help="processes drawing the images")] = 1,
) -> None:
    """Generate the synthetic long-tailed chest-X-ray-like dataset (NIH-CXR-LT label format)."""
    bar, update = _progress()
    done = [0]

    def tick(k: int) -> None:
        done[0] += k
        update("images", done[0], n)

    with bar:
        counts = write_dataset(out, n, seed, size, tick, workers=workers)
    console.print(f"wrote {n} images to {out / 'images'}; splits {json.dumps(counts)}")
    console.print(f"labels: {', '.join(str(p) for p in sorted(out.glob('*_labels_*.csv')))}")


@app.command("train")
def train_command(
    labels: Annotated[list[Path], typer.Option(help="label file(s); repeat for several")],
    images: Annotated[Path, typer.Option(help="image folder")],
    out: Annotated[Path, typer.Option(help="run folder: one seed-{s}/ per seed")],
    fmt: Annotated[str, typer.Option("--format")] = "nih-cxr-lt",
    split_file: Annotated[Path | None, typer.Option("--split", help="CSV image,split")] = None,
    seeds: Annotated[str, typer.Option(help="comma-separated seeds, e.g. 0,1,2")] = "0,1,2",
    model: Annotated[ModelName, typer.Option(help="the architecture")] = "smallcnn",
    image_size: Annotated[int, typer.Option()] = 256,
    epochs: Annotated[int, typer.Option(help="most epochs per seed")] = 30,
    patience: Annotated[int, typer.Option(help="early stopping patience (epochs)")] = 3,
    batch_size: Annotated[int, typer.Option()] = 64,
    lr: Annotated[float, typer.Option()] = 1e-4,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = "auto",
    pretrained: Annotated[
        Path | None, typer.Option(help="local ImageNet weights (state dict)")
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="image cache folder: each split decoded once there, reused by every run"),
    ] = None,
) -> None:
    """Train a population of models (one per seed); finished seeds are skipped."""
    from ml.config import TrainConfig
    from ml.models import create_model
    from ml.train import train_population

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        config = TrainConfig(
            model=model, image_size=image_size, max_epochs=epochs, patience=patience, batch_size=batch_size,
            lr=lr, device=device, pretrained_path=str(pretrained) if pretrained else None,
        )  # fmt: skip
        create_model(model, 1)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    train = _read_split(labels, fmt, images, split_file, "train", image_size, cache_dir)
    val = _read_split(labels, fmt, images, split_file, "val", image_size, cache_dir)
    bar, update = _progress()
    with bar:
        results = train_population(config, seed_list, train, val, out, update)
    for r in results:
        state = "already finished, skipped" if r.skipped else f"{r.epochs_run} epochs"
        if r.resumed_after:
            state += f", resumed after epoch {r.resumed_after}"
        console.print(
            f"seed {r.seed}: best val loss {r.best_val_loss:.4f} at epoch {r.best_epoch} ({state})"
        )
    console.print(f"{len(results)} models in {out}")


@app.command("prune-predict")
def prune_predict_command(
    run: Annotated[Path, typer.Argument(help="run folder from `piestudy ml train`")],
    labels: Annotated[list[Path], typer.Option(help="label file(s)")],
    images: Annotated[Path, typer.Option(help="image folder")],
    out: Annotated[Path, typer.Option(help="prediction store folder to create")],
    fmt: Annotated[str, typer.Option("--format")] = "nih-cxr-lt",
    split_file: Annotated[Path | None, typer.Option("--split", help="CSV image,split")] = None,
    split: Annotated[str, typer.Option("--predict-split", help="which split to predict")] = "test",
    method: Annotated[str, typer.Option(help="l1 or random")] = "l1",
    min_keep: Annotated[float, typer.Option(help="Global MP per-layer minimum, e.g. 0.0005")] = 0.0,
    batch_size: Annotated[int, typer.Option()] = 128,
    device: Annotated[str, typer.Option()] = "auto",
    overwrite: Annotated[bool, typer.Option()] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="image cache folder: each split decoded once there, reused by every run"),
    ] = None,
) -> None:
    """Prune every model of a run at the 20 sparsities and store the predictions."""
    from ml.config import TrainConfig
    from ml.predict import PruningConfig, predict_population
    from ml.train import finished_seeds

    seeds = finished_seeds(run)
    if not seeds:
        raise fail(f"no finished seeds in {run}")
    if method not in ("l1", "random"):
        raise fail("--method must be l1 or random")
    config = TrainConfig.load(run / f"seed-{seeds[0]}" / "config.json")
    data = _read_split(labels, fmt, images, split_file, split, config.image_size, cache_dir)
    bar, update = _progress()
    try:
        with bar:
            store = predict_population(
                run, seeds, data, out, dataset=images.resolve().parent.name,
                pruning=PruningConfig(method=method, min_keep=min_keep),  # type: ignore[arg-type]
                batch_size=batch_size, device=device, overwrite=overwrite, progress=update,
            )  # fmt: skip
    except (StoreError, ValueError) as exc:
        raise fail(str(exc)) from exc
    s, k, n, c = store.meta.shape
    console.print(f"wrote {out}: {s} seeds x {k} sparsities x {n} images x {c} classes")


@app.command("report")
def report_command(
    store: Annotated[Path, typer.Argument(help="prediction store folder")],
    out: Annotated[Path, typer.Option(help="folder for report.html, analysis.json and figures/")],
    train_labels: Annotated[
        list[Path] | None,
        typer.Option(help="label file(s); their train split gives the class counts"),
    ] = None,
    fmt: Annotated[str, typer.Option("--format")] = "nih-cxr-lt",
    split_file: Annotated[
        Path | None, typer.Option("--split", help="CSV image,split for the label files")
    ] = None,
    train_counts: Annotated[
        Path | None, typer.Option(help="JSON {class: training count} instead of label files")
    ] = None,
    run: Annotated[
        Path | None, typer.Option(help="run folder: the weight histogram of its first seed")
    ] = None,
    k_star: Annotated[float, typer.Option()] = 0.9,
    percentile: Annotated[float, typer.Option()] = 5.0,
    measure: Annotated[
        Measure, typer.Option(help="the PIE score (see `ml pies --help`)")
    ] = "spearman",
    alpha: Annotated[float, typer.Option(help="significance level of the Welch tests")] = 0.001,
) -> None:
    """The paper's pruning analysis of a store: figures, tables, a self-contained HTML report."""
    import time

    from ml.analysis.library import training_counts
    from ml.analysis.report import analyze, write_report

    started = time.perf_counter()
    try:
        opened = PredictionStore.open(store)
        counts, train_size = training_counts(
            opened.meta.classes, label_files=train_labels, label_format=fmt,
            split_file=split_file, counts=train_counts,
        )  # fmt: skip
        weights = None
        if run is not None:
            from ml.train import trained_weights

            weights = trained_weights(run, len(opened.meta.classes))
        extra = {"split_sizes": {"train": train_size}} if train_size is not None else None
        result = analyze(
            opened, counts, k_star=k_star, percentile=percentile, alpha=alpha, weights=weights,
            measure=measure, provenance_extra=extra,
        )  # fmt: skip
    except (StoreError, ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from exc
    page = write_report(result, out)
    o, f = result.overall, result.forgettability
    console.print(f"first significant mAP drop at k = {o.first_significant_k} (Welch, P < {alpha})")
    rho = f.first_k_vs_freq.spearman_rho
    console.print(
        f"forgettability vs log train frequency: rho = {rho if rho is None else round(rho, 3)}"
    )
    console.print(
        f"wrote {page} and {out / 'analysis.json'} in {time.perf_counter() - started:.1f} s"
    )


from ml.compare_cli import compare_command  # noqa: E402 - its own module, registered here

app.command("compare")(compare_command)
