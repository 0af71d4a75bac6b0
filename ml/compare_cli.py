"""`piestudy ml compare`: PIE sets or prediction stores side by side (ml.compare)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ml.console import console, fail
from ml.store import StoreError


def compare_command(
    items: Annotated[
        list[Path], typer.Argument(help="prediction store folders and/or PIE set CSVs (2 or more)")
    ],
    out: Annotated[
        Path, typer.Option(help="folder for comparison.json, pairs.csv, curves.png|svg")
    ],
    k_star: Annotated[
        list[float] | None,
        typer.Option(help="k* of the stores: once for all, or once per store in order"),
    ] = None,
    measure: Annotated[
        list[str] | None, typer.Option(help="the PIE score of the stores: once, or once per store")
    ] = None,
    percentile: Annotated[float, typer.Option()] = 5.0,
) -> None:
    """Put PIE sets or stores side by side: PIE overlap (Jaccard), score correlation, and the
    forgettability curves overlaid. A store given twice with two --k-star values compares
    those k*."""
    from ml.compare import compare, from_pies_csv, from_store, write_comparison

    stores = [p for p in items if p.is_dir()]

    def per_store(values: list[Any] | None, default: Any, what: str) -> list[Any]:
        if not values:
            return [default] * len(stores)
        if len(values) == 1:
            return values * len(stores)
        if len(values) != len(stores):
            raise fail(
                f"{len(values)} {what} values for {len(stores)} stores: give one, or one per store"
            )
        return values

    ks, measures = per_store(k_star, 0.9, "--k-star"), per_store(measure, "spearman", "--measure")
    try:
        built, s = [], 0
        for path in items:
            if path.is_dir():
                built.append(
                    from_store(path, k_star=ks[s], measure=measures[s], percentile=percentile)
                )
                s += 1
            elif path.is_file():
                built.append(from_pies_csv(path))
            else:
                raise ValueError(f"{path}: neither a prediction store folder nor a PIE set file")
        result = compare(built)
    except (StoreError, ValueError) as exc:
        raise fail(str(exc)) from exc
    write_comparison(result, out)
    for p in result["pairs"]:
        jaccard = "undefined" if p["jaccard"] is None else f"{p['jaccard']:.3f}"
        rho = "undefined" if p["spearman"] is None else f"{p['spearman']:.3f}"
        console.print(f"{p['a']}  vs  {p['b']}: Jaccard {jaccard} ({p['pies_both']} PIEs in both of "
                      f"{p['pies_a']} and {p['pies_b']}), score Spearman {rho} over {p['scored_both']} images")  # fmt: skip
    console.print(f"wrote {out / 'comparison.json'} and {out / 'pairs.csv'}")
