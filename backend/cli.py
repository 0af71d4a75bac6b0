"""The `piestudy` command."""

from __future__ import annotations

import getpass
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from backend.auth import service as auth_service
from backend.auth.models import Role, User
from backend.auth.schemas import UserCreate
from backend.config import get_settings
from backend.datasets import service as datasets_service
from backend.db import make_engine, make_sessionmaker
from backend.errors import AppError
from backend.runs.models import MAX_ATTEMPTS
from ml.cli import app as ml_app
from ml.data.labels import LABEL_FORMATS, LabelFormat

app = typer.Typer(
    help="piestudy: PIE analysis and reader studies for chest X-ray classifiers",
    no_args_is_help=True,
)
db_app = typer.Typer(help="database schema", no_args_is_help=True)
user_app = typer.Typer(help="coordinator, researcher and admin accounts", no_args_is_help=True)
dataset_app = typer.Typer(help="datasets: images and labels", no_args_is_help=True)
pieset_app = typer.Typer(help="PIE sets", no_args_is_help=True)
study_app = typer.Typer(help="reader studies", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(dataset_app, name="dataset")
app.add_typer(pieset_app, name="pieset")
app.add_typer(study_app, name="study")
app.add_typer(ml_app, name="ml")
run_app = typer.Typer(
    help="PIE regeneration runs (executed by `piestudy worker`)", no_args_is_help=True
)
app.add_typer(run_app, name="run")

console = Console()
err = Console(stderr=True)


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction: committed when the block succeeds, rolled back (nothing written) if not."""
    engine = make_engine(get_settings().resolved_database_url)
    try:
        with make_sessionmaker(engine)() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
    except AppError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        problems = exc.detail.get("problems") if isinstance(exc.detail, dict) else None
        for p in problems or []:
            err.print(f"  {p['file']}:{p['line']}: {p['field']}: {p['message']}")
        if isinstance(exc.detail, dict) and exc.detail.get("total", 0) > len(problems or []):
            err.print(f"  ... {exc.detail['total'] - len(problems or [])} more")
        raise typer.Exit(code=2) from exc
    finally:
        engine.dispose()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port (PIESTUDY_PORT)")] = None,
    workers: Annotated[
        int | None, typer.Option(help="server processes (PIESTUDY_WORKERS)", min=1, max=32)
    ] = None,
) -> None:
    """Serve the API and the web interface."""
    import uvicorn

    settings = get_settings()
    workers = workers or settings.server_workers
    # each process shares out the database slots by the number of processes (backend.db)
    os.environ["PIESTUDY_WORKERS"] = str(workers)
    uvicorn.run(
        "backend.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


@app.command()
def demo(
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="serve once built")
    ] = True,
) -> None:
    """Build the demo (synthetic data, a trained and pruned population, its PIEs, a 6-reader
    study) unless it exists, print the coordinator's login and the reader links, and serve."""
    from backend import migrate
    from backend.demo import build_demo

    settings = get_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    migrate.upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        result = build_demo(make_sessionmaker(engine), settings, typer.echo)
    finally:
        engine.dispose()
    console.print(f"\n[bold]piestudy demo[/bold] ready in {time.perf_counter() - started:.0f} s")
    # plain echo: links and passwords must never be wrapped
    typer.echo(f"  sign in at {settings.base_url}/login")
    typer.echo(f"    coordinator: {result.coordinator}   password: {result.password}")
    typer.echo(f"    researcher:  researcher    password: {result.password}")
    typer.echo("  reader links (one per reader; each opens that reader's cases):")
    for name, url in result.links:
        typer.echo(f"    {name}: {url}")
    if serve_after:
        console.print(f"\nserving on {settings.base_url} (Ctrl-C stops)\n")
        serve(host=None, port=None, workers=None)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Create or migrate the schema (to the newest revision by default)."""
    from backend import migrate

    url = get_settings().resolved_database_url
    migrate.upgrade(url, revision)
    console.print(f"database at {_safe_url(url)} is at revision {revision}")


@db_app.command("backup")
def db_backup(
    out: Annotated[Path, typer.Argument(help="backup file to create (.sqlite or .dump)")],
) -> None:
    """A consistent copy of the whole database, taken while it runs."""
    from backend.backup import BackupError, backup

    try:
        info = backup(get_settings().resolved_database_url, out)
    except BackupError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"backed up the {info.kind} database to {info.path} ({info.size:,} bytes)")


@db_app.command("restore")
def db_restore(
    src: Annotated[Path, typer.Argument(help="a file from `piestudy db backup`")],
    yes: Annotated[
        bool, typer.Option("--yes", help="confirm: the database's contents are replaced")
    ] = False,
) -> None:
    """Replace the database's contents with a backup's (all or nothing), then migrate."""
    from backend.backup import BackupError, restore

    url = get_settings().resolved_database_url
    if not yes:
        err.print(
            f"[red]error:[/red] this replaces everything in {_safe_url(url)}; add --yes to go on"
        )
        raise typer.Exit(2)
    try:
        restore(url, src)
    except BackupError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"restored {_safe_url(url)} from {src}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="target, e.g. -1 or base")]) -> None:
    """Undo migrations down to REVISION."""
    from backend import migrate

    migrate.downgrade(get_settings().resolved_database_url, revision)
    console.print(f"downgraded to {revision}")


def _safe_url(url: str) -> str:
    from sqlalchemy import make_url

    return make_url(url).render_as_string(hide_password=True)


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[Role, typer.Option(help="admin, coordinator or researcher")] = Role.coordinator,
    display_name: Annotated[str, typer.Option()] = "",
    password_env: Annotated[
        str | None,
        typer.Option(help="read the password from this environment variable instead of a prompt"),
    ] = None,
) -> None:
    """Create an account (the password is prompted for, never passed on the command line)."""
    if password_env:
        password = os.environ.get(password_env, "")
        if not password:
            err.print(f"[red]error:[/red] environment variable {password_env} is empty or unset")
            raise typer.Exit(2)
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            err.print("[red]error:[/red] the passwords differ")
            raise typer.Exit(2)
    try:
        data = UserCreate(
            username=username, password=password, role=role, display_name=display_name
        )
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    with session_scope() as session:
        user = auth_service.create_user(session, data)
        console.print(f"created {user.role.value} {user.username!r} (id {user.id})")


@user_app.command("list")
def user_list() -> None:
    """List accounts."""
    with session_scope() as session:
        table = Table("id", "username", "role", "active")
        for u in auth_service.list_users(session):
            table.add_row(str(u.id), u.username, u.role.value, "yes" if u.is_active else "no")
        console.print(table)


@dataset_app.command("import")
def dataset_import(
    name: Annotated[str, typer.Option(help="a unique name for the dataset")],
    labels: Annotated[
        list[Path], typer.Option(help="labels file; repeat for train/val/test files")
    ],
    images: Annotated[Path, typer.Option(help="the folder the image paths are relative to")],
    fmt: Annotated[
        str, typer.Option("--format", help=f"one of: {', '.join(LABEL_FORMATS)}")
    ] = "chestxray14",
    split: Annotated[Path | None, typer.Option(help="CSV image,split (train/val/test)")] = None,
    classes: Annotated[str | None, typer.Option(help="plain format: classes joined with |")] = None,
) -> None:
    """Import a dataset: all rows or none."""
    if fmt not in LABEL_FORMATS:
        err.print(
            f"[red]error:[/red] --format must be one of {', '.join(LABEL_FORMATS)}, not {fmt!r}"
        )
        raise typer.Exit(2)
    label_format: LabelFormat = fmt
    with session_scope() as session:
        dataset = datasets_service.import_dataset(
            session,
            name=name,
            fmt=label_format,
            labels_files=labels,
            image_dir=images,
            split_file=split,
            classes=classes.split("|") if classes else None,
        )
        splits = dataset.provenance.get("splits", {})
        console.print(
            f"imported dataset {dataset.name!r} (id {dataset.id}): {dataset.image_count} images, "
            f"{len(dataset.classes)} classes, splits {json.dumps(splits)}"
        )


@dataset_app.command("list")
def dataset_list() -> None:
    """List datasets."""
    with session_scope() as session:
        table = Table("id", "name", "format", "images", "classes")
        for d in datasets_service.list_datasets(session):
            table.add_row(
                str(d.id), d.name, d.label_format, str(d.image_count), str(len(d.classes))
            )
        console.print(table)


@pieset_app.command("import")
def pieset_import(
    dataset: Annotated[str, typer.Option(help="dataset id or name")],
    name: Annotated[str, typer.Option(help="PIE set name; a re-import makes the next version")],
    file: Annotated[Path, typer.Option(help="CSV image,is_pie,score[,rank]")],
    parameters: Annotated[
        str | None, typer.Option(help='JSON object, e.g. {"k_star": 0.9}')
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="folder (or report.html) from `piestudy ml report`")
    ] = None,
) -> None:
    """Import a PIE set (frozen once created), optionally with its analysis report."""
    from backend.piesets import service as piesets_service

    if not file.is_file():
        err.print(f"[red]error:[/red] --file: not found: {file}")
        raise typer.Exit(2)
    params = json.loads(parameters) if parameters else {}
    report_html = None
    if report is not None:
        report_file = report / "report.html" if report.is_dir() else report
        if not report_file.is_file():
            err.print(f"[red]error:[/red] --report: no report.html at {report}")
            raise typer.Exit(2)
        report_html = report_file.read_bytes()
    with session_scope() as session:
        ds = datasets_service.find_dataset(session, dataset)
        pie_set = piesets_service.import_pie_set(
            session,
            dataset_id=ds.id,
            name=name,
            csv_bytes=file.read_bytes(),
            source_name=file.name,
            parameters=params,
            report_html=report_html,
            media_dir=get_settings().resolved_media_dir,
        )
        console.print(
            f"imported PIE set {pie_set.name!r} v{pie_set.version} (id {pie_set.id}): "
            f"{pie_set.member_count} images, {pie_set.pie_count} PIEs"
        )


@pieset_app.command("list")
def pieset_list() -> None:
    """List PIE sets."""
    from backend.piesets import service as piesets_service

    with session_scope() as session:
        table = Table("id", "dataset", "name", "version", "images", "PIEs")
        for p in piesets_service.list_pie_sets(session):
            table.add_row(
                str(p.id),
                str(p.dataset_id),
                p.name,
                str(p.version),
                str(p.member_count),
                str(p.pie_count),
            )
        console.print(table)


@study_app.command("create")
def study_create(
    name: Annotated[str, typer.Option()],
    pieset: Annotated[int, typer.Option(help="PIE set id")],
    owner: Annotated[str, typer.Option(help="username of the coordinator who owns it")],
    cases_per_reader: Annotated[int, typer.Option()] = 40,
    pie_fraction: Annotated[float, typer.Option()] = 0.5,
    overlap_cases: Annotated[int, typer.Option()] = 0,
    readers: Annotated[
        int, typer.Option(help="planned number of readers (checked against the pool)")
    ] = 6,
    seed: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Create a study from a PIE set."""
    from backend.studies import service as studies_service
    from backend.studies.schemas import StudyCreate

    with session_scope() as session:
        user = _user(session, owner)
        study = studies_service.create_study(
            session,
            user,
            StudyCreate(
                name=name,
                pie_set_id=pieset,
                cases_per_reader=cases_per_reader,
                pie_fraction=pie_fraction,
                overlap_cases=overlap_cases,
                planned_readers=readers,
                seed=seed,
            ),
        )
        console.print(
            f"created study {study.name!r} (id {study.id}, seed {study.seed}, {study.status.value})"
        )


@study_app.command("enroll")
def study_enroll(
    study: Annotated[int, typer.Option(help="study id")],
    reader: Annotated[list[str], typer.Option(help="reader display name; repeat for several")],
    as_user: Annotated[str, typer.Option("--as", help="coordinator username")],
) -> None:
    """Enroll readers and print their invitation links (shown once)."""
    from backend.studies import service as studies_service
    from backend.studies.router import invitation_url

    with session_scope() as session:
        user = _user(session, as_user)
        enrolled = studies_service.enroll_readers(session, study, user, reader)
        for e in enrolled:
            console.print(f"{e.reader.display_name}: {invitation_url(get_settings(), e.token)}")


@run_app.command("start")
def run_start(
    dataset: Annotated[str, typer.Option(help="dataset id or name")],
    name: Annotated[str, typer.Option(help="PIE set name; the result is its next version")],
    as_user: Annotated[str, typer.Option("--as", help="researcher (or admin) username")],
    source: Annotated[str, typer.Option(help="train, store or reference")] = "train",
    seeds: Annotated[str, typer.Option(help="comma-separated seeds")] = "0,1,2",
    model: Annotated[str, typer.Option(help="smallcnn, resnet18 or resnet50")] = "smallcnn",
    image_size: Annotated[int, typer.Option()] = 64,
    epochs: Annotated[int, typer.Option(help="most epochs per seed")] = 8,
    k_star: Annotated[float, typer.Option()] = 0.9,
    percentile: Annotated[float, typer.Option()] = 5.0,
    min_keep: Annotated[float, typer.Option(help="Global MP per-layer minimum; 0: off")] = 0.0,
    store: Annotated[Path | None, typer.Option(help="source store: the prediction store")] = None,
    reference: Annotated[
        Path | None, typer.Option(help="source reference: the folder of pickles")
    ] = None,
    reference_labels: Annotated[
        Path | None, typer.Option(help="the test label CSV the pickles follow")
    ] = None,
    executor: Annotated[str, typer.Option(help="local or ray")] = "local",
) -> None:
    """Queue a PIE regeneration run."""
    from pydantic import ValidationError

    from backend.runs import service as runs_service
    from backend.runs.schemas import RunCreate

    try:
        data = RunCreate.model_validate(
            {
                "dataset_id": 0, "name": name, "source": source, "executor": executor,
                "params": {
                    "seeds": [int(x) for x in seeds.split(",") if x.strip()], "model": model,
                    "image_size": image_size, "epochs": epochs, "k_star": k_star,
                    "percentile": percentile, "min_keep": min_keep,
                    "store_path": str(store.resolve()) if store else None,
                    "reference_dir": str(reference.resolve()) if reference else None,
                    "reference_labels": str(reference_labels.resolve()) if reference_labels else None,
                },
            }
        )  # fmt: skip
    except (ValidationError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    settings = get_settings()
    # the CLI runs on the server: the paths it names are the operator's own
    settings = settings.model_copy(
        update={
            "import_roots": [
                *settings.import_roots,
                *(p.resolve().parent for p in (store, reference, reference_labels) if p),
            ]
        }
    )
    with session_scope() as session:
        user = _user(session, as_user)
        data.dataset_id = datasets_service.find_dataset(session, dataset).id
        run = runs_service.create_run(session, user, data, settings)
        console.print(
            f"queued run {run.id} ({run.source}); follow it with `piestudy run show {run.id}`"
        )


@run_app.command("list")
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


@run_app.command("show")
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


@run_app.command("cancel")
def run_cancel(run_id: int) -> None:
    """Cancel a run (a running one stops within seconds)."""
    from backend.runs import service as runs_service

    with session_scope() as session:
        r = runs_service.cancel_run(session, run_id)
        state = "cancelled" if r.status.value == "cancelled" else "asked to stop"
        console.print(f"run {r.id}: {state}")


@app.command()
def worker(
    executor: Annotated[
        str, typer.Option(help="local, or ray (training and inference on a Ray cluster)")
    ] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster address; unset: a local Ray instance")
    ] = None,
    lease: Annotated[
        float, typer.Option(help="seconds of silence after which a run is re-queued")
    ] = 30.0,
    heartbeat: Annotated[float, typer.Option(help="seconds between heartbeats")] = 2.0,
    poll: Annotated[float, typer.Option(help="seconds between looks at an empty queue")] = 1.0,
    max_attempts: Annotated[
        int, typer.Option(help="attempts of a run before one whose worker fell silent fails")
    ] = MAX_ATTEMPTS,
    drain: Annotated[bool, typer.Option(help="exit once no run is queued")] = False,
) -> None:
    """Execute queued runs, one at a time, until stopped."""
    from backend.runs.worker import Worker

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        w = Worker(
            make_sessionmaker(engine), settings, executor=executor, ray_address=ray_address,
            lease_s=lease, heartbeat_s=heartbeat, poll_s=poll, max_attempts=max_attempts,
            say=typer.echo,
        )  # fmt: skip
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    w.install_signal_handlers()
    console.print(f"worker {w.id} ({executor}) waiting for runs")
    try:
        done = w.serve(drain=drain)
    finally:
        engine.dispose()
    console.print(f"worker {w.id}: {done} run(s) executed")


def _user(session: Session, username: str) -> User:
    from backend.auth import repository as auth_repo

    user = auth_repo.get_user_by_username(session, username)
    if user is None:
        err.print(
            f"[red]error:[/red] no user named {username!r}; create one with `piestudy user create`"
        )
        raise typer.Exit(2)
    return user


if __name__ == "__main__":
    app()
