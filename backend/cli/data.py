"""`piestudy dataset|pieset|study ...`: datasets, PIE sets and reader studies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from backend.cli.common import console, fail, find_user, session_scope
from backend.config import get_settings
from backend.datasets import service as datasets_service
from ml.data.labels import LABEL_FORMATS, LabelFormat

dataset_app = typer.Typer(help="datasets: images and labels", no_args_is_help=True)
pieset_app = typer.Typer(help="PIE sets", no_args_is_help=True)
study_app = typer.Typer(help="reader studies", no_args_is_help=True)


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
        raise fail(f"--format must be one of {', '.join(LABEL_FORMATS)}, not {fmt!r}")
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
        raise fail(f"--file: not found: {file}")
    try:
        params = json.loads(parameters) if parameters else {}
    except json.JSONDecodeError as exc:
        raise fail(f"--parameters: not valid JSON ({exc.msg})") from exc
    if not isinstance(params, dict):
        raise fail('--parameters: give a JSON object, e.g. {"k_star": 0.9}')
    report_html = None
    if report is not None:
        report_file = report / "report.html" if report.is_dir() else report
        if not report_file.is_file():
            raise fail(f"--report: no report.html at {report}")
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


def _json_file(path: Path | None, option: str) -> Any:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise fail(f"{option}: {path} is not JSON ({exc})") from exc


@study_app.command("create")
def study_create(
    name: Annotated[str, typer.Option()],
    pieset: Annotated[int, typer.Option(help="PIE set id")],
    owner: Annotated[str, typer.Option(help="username of the coordinator who owns it")],
    cases_per_reader: Annotated[int, typer.Option()] = 40,
    pie_fraction: Annotated[float, typer.Option()] = 0.5,
    overlap_cases: Annotated[int, typer.Option()] = 0,
    practice_cases: Annotated[
        int, typer.Option(help="cases every reader reads first; never exported or counted")
    ] = 0,
    profile_fields: Annotated[
        Path | None,
        typer.Option(
            help="JSON file: a list of reader profile questions"
            ' ({"key", "label", "kind": integer|choice|text, ...})',
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    window_presets: Annotated[
        Path | None,
        typer.Option(
            help="JSON file: the viewer's window presets"
            ' ({"key", "label", "center", "width"} or {..., "from_percentile", "to_percentile"})',
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    readers: Annotated[
        int, typer.Option(help="planned number of readers (checked against the pool)")
    ] = 6,
    seed: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Create a study from a PIE set."""
    from backend.studies import service as studies_service
    from backend.studies.schemas import StudyCreate

    questions = _json_file(profile_fields, "--profile-fields") or []
    presets = _json_file(window_presets, "--window-presets")
    try:
        data = StudyCreate(
            name=name,
            pie_set_id=pieset,
            cases_per_reader=cases_per_reader,
            pie_fraction=pie_fraction,
            overlap_cases=overlap_cases,
            practice_cases=practice_cases,
            planned_readers=readers,
            seed=seed,
            profile_fields=questions,
            window_presets=presets,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise fail(f"--{where.replace('_', '-')}: {first['msg']}") from exc
    with session_scope() as session:
        user = find_user(session, owner)
        study = studies_service.create_study(session, user, data)
        console.print(
            f"created study {study.name!r} (id {study.id}, seed {study.seed}, {study.status.value})"
        )


@study_app.command("enroll")
def study_enroll(
    study: Annotated[int, typer.Option(help="study id")],
    reader: Annotated[list[str], typer.Option(help="reader display name; repeat for several")],
    as_user: Annotated[str, typer.Option("--as", help="coordinator username")],
    allow_duplicate_names: Annotated[
        bool, typer.Option(help="enroll a name that is already in the study")
    ] = False,
) -> None:
    """Enroll readers and print their invitation links (shown once)."""
    from backend.studies import service as studies_service
    from backend.studies.service import invitation_url

    with session_scope() as session:
        user = find_user(session, as_user)
        enrolled = studies_service.enroll_readers(
            session, study, user, reader, allow_duplicate_names=allow_duplicate_names
        )
        for e in enrolled:
            console.print(f"{e.reader.display_name}: {invitation_url(get_settings(), e.token)}")


@study_app.command("render")
def study_render(
    study: Annotated[int, typer.Option(help="study id")],
    workers: Annotated[int | None, typer.Option(min=1, max=32, help="threads")] = None,
) -> None:
    """Make every image's reader renderings now (the server also does it when a study opens)."""
    from backend.db import make_engine, make_sessionmaker, read_only
    from backend.reading.renderings import render_study
    from backend.studies import repository as studies_repo

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        sessions = make_sessionmaker(read_only(engine))
        with sessions() as session:
            if studies_repo.get(session, study) is None:
                raise fail(f"no study {study}")
        report = render_study(sessions, study, settings.resolved_media_dir, workers)
    finally:
        engine.dispose()
    console.print(
        f"study {study}: {report.images} images, {report.made} renderings made,"
        f" {report.failed} failed, in {report.seconds:.1f} s"
    )
    if report.failed:
        raise fail(f"{report.failed} images cannot be rendered (the server log names their ids)")
