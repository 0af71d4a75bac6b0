"""Datasets: import an image folder plus label files, all or nothing."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.orm import Session

from backend.datasets import repository
from backend.datasets.models import Dataset, Image
from backend.errors import ConflictError, InvalidInputError, NotFoundError
from ml.data.labels import (
    LabelFormat,
    LabelProblem,
    missing_images,
    patient_leakage,
    read_labels,
    resolve_image,
    unreadable_images,
)
from ml.fileio import sha256_file

SHOWN_PROBLEMS = 20


class ImportRejectedError(InvalidInputError):
    """A labels file with problems: nothing was imported; the first problems are listed."""

    def __init__(self, what: str, problems: Sequence[LabelProblem]):
        shown = [
            {"file": p.source, "line": p.line, "field": p.field, "message": p.message}
            for p in problems[:SHOWN_PROBLEMS]
        ]
        first = problems[0]
        super().__init__(
            f"{what} rejected, nothing was imported: {len(problems)} problem(s); first: {first}",
            detail={"problems": shown, "total": len(problems)},
        )


def import_dataset(
    session: Session,
    *,
    name: str,
    fmt: LabelFormat,
    labels_files: Sequence[Path],
    image_dir: Path,
    split_file: Path | None = None,
    classes: Sequence[str] | None = None,
    created_by_id: int | None = None,
) -> Dataset:
    if repository.get_by_name(session, name) is not None:
        raise ConflictError(f"a dataset named {name!r} already exists; choose another name")
    if not image_dir.is_dir():
        raise InvalidInputError(f"image_dir: folder not found: {image_dir}")
    if classes is not None and fmt != "plain":
        raise InvalidInputError("classes: only the plain format takes a class list")
    if classes is not None and len(set(classes)) != len(classes):
        raise InvalidInputError("classes: a class is listed twice")
    try:
        table = read_labels(fmt, labels_files, split_file=split_file, classes=classes)
    except (FileNotFoundError, ValueError, csv.Error) as exc:
        raise InvalidInputError(f"labels: {exc}") from exc
    problems = [
        *table.problems,
        *missing_images(table.records, image_dir),
        *unreadable_images(table.records, image_dir),
        *patient_leakage(table.records),
    ]
    if not table.records and not problems:
        problems.append(LabelProblem(labels_files[0].name, None, "rows", "no images listed"))
    if problems:
        raise ImportRejectedError(f"dataset {name!r}", problems)

    split_counts = Counter(r.split or "none" for r in table.records)
    dataset = Dataset(
        name=name,
        label_format=fmt,
        classes=list(table.classes),
        image_root=str(image_dir.resolve()),
        image_count=len(table.records),
        created_by_id=created_by_id,
        provenance={
            "labels_files": [
                {"name": p.name, "path": str(p.resolve()), "sha256": sha256_file(p)}
                for p in labels_files
            ],
            "split_file": str(split_file.resolve()) if split_file else None,
            "splits": dict(sorted(split_counts.items())),
            "class_counts": {
                c: int(n)
                for c, n in zip(table.classes, table.labels_matrix().sum(axis=0), strict=True)
            },
        },
    )
    repository.add(session, dataset)
    repository.insert_images(
        session,
        (
            {
                "dataset_id": dataset.id,
                "external_id": r.external_id,
                "file_path": r.path,
                "labels": list(r.labels),
                "patient_id": r.patient_id,
                "split": r.split,
                "meta": r.meta,
            }
            for r in table.records
        ),
    )
    return dataset


def get_dataset(session: Session, dataset_id: int) -> Dataset:
    dataset = repository.get(session, dataset_id)
    if dataset is None:
        raise NotFoundError(f"dataset {dataset_id} not found")
    return dataset


def find_dataset(session: Session, ref: str) -> Dataset:
    """A dataset by id or by name (the CLI takes either)."""
    dataset = repository.get(session, int(ref)) if ref.isdigit() else None
    dataset = dataset or repository.get_by_name(session, ref)
    if dataset is None:
        raise NotFoundError(f"dataset {ref!r} not found")
    return dataset


def image_file(session: Session, image_id: int) -> Path | None:
    """The file of a dataset image on this server, or None when it is not there."""
    image = repository.get_image(session, image_id)
    if image is None:
        return None
    dataset = get_dataset(session, image.dataset_id)
    path = resolve_image(Path(dataset.image_root), image.file_path)
    return path if path is not None and path.is_file() else None


def list_datasets(session: Session) -> Sequence[Dataset]:
    return repository.list_all(session)


def page_images(
    session: Session, dataset_id: int, *, offset: int, limit: int, split: str | None = None
) -> tuple[int, Sequence[Image]]:
    get_dataset(session, dataset_id)
    total = repository.count_images(session, dataset_id, split)
    return total, repository.page_images(
        session, dataset_id, offset=offset, limit=limit, split=split
    )
