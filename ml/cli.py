"""`piestudy ml ...`: the researcher's commands (registered by backend.cli)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ml.pies import find_pies, pie_scores, write_pie_set
from ml.reference import ReferenceImportError, import_reference
from ml.store import PredictionStore, StoreError

app = typer.Typer(
    help="the PIE engine: data, populations, pruning, predictions, PIEs", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


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
) -> None:
    """Find the PIEs of a prediction store."""
    try:
        opened = PredictionStore.open(store)
        scores = pie_scores(opened.predictions, opened.meta.sparsities, k_star=k_star)
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
        f"{s['pies']} PIEs of {s['images']} images (score <= {s['threshold']:.4f}, the {percentile:g}th "
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
