"""`piestudy run ...`: PIE regeneration runs, executed by `piestudy worker`.

The options of `run start` are not written here: they are derived from ml.runparams.RunOptions,
the one declaration of a run's parameters (the API's `params` is that model too), so their
names, defaults, bounds and help are the same everywhere (tests/backend/runs/test_params.py).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any, get_args

import typer
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from rich.table import Table

from backend.cli.common import console, fail, find_user, session_scope
from backend.config import get_settings
from backend.datasets import service as datasets_service
from ml.executors import ExecutorName
from ml.runparams import RunOptions, Source, option_specs

app = typer.Typer(
    help="PIE regeneration runs (executed by `piestudy worker`)", no_args_is_help=True
)
PATH_OPTIONS = ("store_path", "reference_dir", "reference_labels")  # server paths: made absolute


def option_for(name: str, field: FieldInfo) -> tuple[Any, Any]:
    """The Typer annotation and default of the `run start` option for a RunOptions field."""
    spec = option_specs()[name]
    help_ = spec.help
    if spec.above is not None:  # exclusive bounds are not Typer's: said in the help
        help_ += f" (> {spec.above:g})"
    if spec.below is not None:
        help_ += f" (< {spec.below:g})"
    if name == "seeds":
        default = ",".join(str(s) for s in spec.default)
        return Annotated[str, typer.Option(help=f"{help_}, comma-separated")], default
    if name in PATH_OPTIONS:
        return Annotated[Path | None, typer.Option(help=help_)], None
    option = typer.Option(help=help_, min=spec.low, max=spec.high)
    return Annotated[field.annotation, option], spec.default


def options_from_cli(values: dict[str, Any]) -> dict[str, Any]:
    """The RunOptions fields from the parsed `run start` options."""
    out = dict(values)
    try:
        out["seeds"] = [int(s) for s in str(values["seeds"]).split(",") if s.strip()]
    except ValueError as exc:
        raise fail(f"--seeds: comma-separated integers, not {values['seeds']!r}") from exc
    for name in PATH_OPTIONS:
        path = values.get(name)
        out[name] = str(Path(path).resolve()) if path else None
    return out


def start(
    dataset: str, name: str, as_user: str, source: Source, executor: ExecutorName, **values: Any
) -> None:
    """Queue a PIE regeneration run."""
    from backend.runs import service as runs_service
    from backend.runs.schemas import RunCreate

    options = options_from_cli(values)
    try:
        params = RunOptions.model_validate(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "--" + "-".join(str(p) for p in first["loc"][:1]).replace("_", "-")
        raise fail(f"{where}: {first['msg']}") from exc
    settings = get_settings()
    # the CLI runs on the server: the paths it names are the operator's own
    paths = [Path(options[n]) for n in PATH_OPTIONS if options[n]]
    settings = settings.model_copy(
        update={"import_roots": [*settings.import_roots, *(p.parent for p in paths)]}
    )
    with session_scope() as session:
        user = find_user(session, as_user)
        ds = datasets_service.find_dataset(session, dataset)
        data = RunCreate(
            dataset_id=ds.id, name=name, source=source, executor=executor, params=params
        )
        run = runs_service.create_run(session, user, data, settings)
        console.print(
            f"queued run {run.id} ({run.source}); follow it with `piestudy run show {run.id}`"
        )


def _start_signature() -> inspect.Signature:
    fixed = [
        ("dataset", Annotated[str, typer.Option(help="dataset id or name")], inspect.Parameter.empty),
        ("name", Annotated[str, typer.Option(help="PIE set name; the result is its next version")], inspect.Parameter.empty),
        ("as_user", Annotated[str, typer.Option("--as", help="researcher (or admin) username")], inspect.Parameter.empty),
        ("source", Annotated[Source, typer.Option(help=", ".join(get_args(Source)))], "train"),
        ("executor", Annotated[ExecutorName, typer.Option(help="local or ray")], "local"),
    ]  # fmt: skip
    derived = [(n, *option_for(n, f)) for n, f in RunOptions.model_fields.items()]
    return inspect.Signature(
        [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=a, default=d)
            for n, a, d in [*fixed, *derived]
        ]
    )


start.__signature__ = _start_signature()  # type: ignore[attr-defined]
start.__annotations__ = {p.name: p.annotation for p in start.__signature__.parameters.values()}  # type: ignore[attr-defined]
app.command("start")(start)


@app.command("list")
def run_list() -> None:
    """List runs."""
    from backend.runs import service as runs_service

    with session_scope() as session:
        table = Table("id", "PIE set", "source", "status", "stage", "progress", "result")
        for r in runs_service.list_runs(session):
            table.add_row(
                str(r.id), r.name, r.source, r.status.value, r.stage, f"{r.progress:.0%}",
                f"PIE set {r.result_pie_set_id}" if r.result_pie_set_id else "",
            )  # fmt: skip
        console.print(table)


@app.command("show")
def run_show(run_id: int) -> None:
    """A run's status, progress, timings and log."""
    from backend.runs import service as runs_service

    with session_scope() as session:
        r = runs_service.get_run(session, run_id)
        console.print(
            f"run {r.id} {r.name!r}: {r.status.value}, {r.stage} ({r.progress:.0%}), attempts {r.attempts}"
        )
        if r.result_pie_set_id:
            console.print(f"result: PIE set {r.result_pie_set_id}")
        if r.error:
            console.print(f"[red]error:[/red] {r.error}")
        if r.timings:
            console.print("timings: " + ", ".join(f"{k} {v} s" for k, v in r.timings.items()))
        console.print(r.log.rstrip(), markup=False, highlight=False)


@app.command("cancel")
def run_cancel(run_id: int) -> None:
    """Cancel a run (a running one stops within seconds)."""
    from backend.runs import service as runs_service

    with session_scope() as session:
        r = runs_service.cancel_run(session, run_id)
        state = "cancelled" if r.status.value == "cancelled" else "asked to stop"
        console.print(f"run {r.id}: {state}")
