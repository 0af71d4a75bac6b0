"""PIE sets: imported from a CSV, versioned per (dataset, name), frozen once created."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from backend.datasets import repository as datasets_repo
from backend.datasets.models import Dataset
from backend.datasets.service import ImportRejectedError, get_dataset
from backend.errors import ConflictError, InvalidInputError, NotFoundError
from backend.piesets import repository
from backend.piesets.models import PieSet, PieSetMember
from backend.piesets.repository import MemberRow
from ml.data.labels import LabelProblem
from ml.fileio import atomic_write
from ml.pieset_file import parse_pieset_csv

MAX_CSV_BYTES = 64 * 1024 * 1024


class FrozenPieSetError(ConflictError):
    pass


@event.listens_for(Session, "before_flush")
def _refuse_changes_to_frozen_pie_sets(session: Session, _ctx: Any, _instances: Any) -> None:
    # A study's results are only meaningful against the exact PIE set it was drawn from.
    for obj in session.dirty:
        if isinstance(obj, PieSet | PieSetMember) and session.is_modified(obj):
            raise FrozenPieSetError(
                "PIE sets are frozen once created; import a new version instead of editing one"
            )


def import_pie_set(
    session: Session,
    *,
    dataset_id: int,
    name: str,
    csv_bytes: bytes,
    source_name: str = "pieset.csv",
    parameters: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    created_by_id: int | None = None,
    report_html: bytes | None = None,
    media_dir: Path | None = None,
) -> PieSet:
    dataset = get_dataset(session, dataset_id)
    if len(csv_bytes) > MAX_CSV_BYTES:
        raise InvalidInputError(f"file: larger than {MAX_CSV_BYTES // (1024 * 1024)} MiB")
    try:
        text = csv_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"file: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    parsed = parse_pieset_csv(text, source_name)
    problems = list(parsed.problems)
    known = datasets_repo.image_ids_by_external(session, dataset.id)
    for row in parsed.rows:
        if row.image not in known:
            problems.append(
                LabelProblem(
                    source_name,
                    row.line,
                    "image",
                    f"{row.image!r} is not an image of dataset {dataset.name!r}",
                )
            )
    rows = parsed.rows
    if not problems:
        if not rows:
            problems.append(LabelProblem(source_name, None, "rows", "the file lists no images"))
        elif all(r.is_pie for r in rows) or not any(r.is_pie for r in rows):
            problems.append(
                LabelProblem(
                    source_name, None, "is_pie", "a PIE set needs both PIEs (1) and non-PIEs (0)"
                )
            )
    if problems:
        raise ImportRejectedError(f"PIE set {name!r}", problems)

    report_name = None
    if report_html is not None:
        report_name = _keep_report(report_html, media_dir)
    # Versions of one dataset's PIE sets are taken one transaction at a time: two imports of one
    # name at once (two workers finishing runs, a run finishing during an upload) would otherwise
    # both read the same latest version, and the second would fail on the unique constraint.
    datasets_repo.lock(session, dataset.id)
    pie_set = PieSet(
        dataset_id=dataset.id,
        name=name,
        version=repository.latest_version(session, dataset.id, name) + 1,
        parameters=parameters or {},
        provenance={
            **(provenance or {}),
            "source": source_name,
            "sha256": hashlib.sha256(csv_bytes).hexdigest(),
            "undefined_scores": sum(r.score is None for r in rows),
            **({"report": report_name} if report_name else {}),
        },
        member_count=len(rows),
        pie_count=sum(r.is_pie for r in rows),
        created_by_id=created_by_id,
    )
    repository.add(session, pie_set)
    repository.insert_members(
        session,
        (
            {
                "pie_set_id": pie_set.id,
                "image_id": known[r.image],
                "is_pie": r.is_pie,
                "score": r.score,
                "rank": r.rank,
            }
            for r in rows
        ),
    )
    return pie_set


MAX_REPORT_BYTES = 64 * 1024 * 1024


def _keep_report(html: bytes, media_dir: Path | None) -> str:
    """Keep a self-contained analysis report (report.html of `piestudy ml report`) in the media
    folder; its file name goes into the PIE set's provenance when the set is created."""
    if media_dir is None:
        raise InvalidInputError("report: no media folder is configured to keep it in")
    if len(html) > MAX_REPORT_BYTES:
        raise InvalidInputError(f"report: larger than {MAX_REPORT_BYTES // (1024 * 1024)} MiB")
    if not html.lstrip()[:15].lower().startswith(b"<!doctype html"):
        raise InvalidInputError(
            "report: not an HTML report (give the report.html of `piestudy ml report`)"
        )
    name = f"{uuid.uuid4().hex}.html"
    atomic_write(media_dir / "reports" / name, html)
    return name


def report_path(pie_set: PieSet, media_dir: Path) -> Path | None:
    name = pie_set.provenance.get("report")
    if not isinstance(name, str) or "/" in name or not name.endswith(".html"):
        return None
    path = media_dir / "reports" / name
    return path if path.is_file() else None


def get_pie_set(session: Session, pie_set_id: int) -> PieSet:
    pie_set = repository.get(session, pie_set_id)
    if pie_set is None:
        raise NotFoundError(f"PIE set {pie_set_id} not found")
    return pie_set


def list_pie_sets(session: Session, dataset_id: int | None = None) -> Sequence[PieSet]:
    return repository.list_all(session, dataset_id)


def page_members(
    session: Session, pie_set_id: int, *, offset: int, limit: int, is_pie: bool | None = None
) -> tuple[int, list[MemberRow]]:
    get_pie_set(session, pie_set_id)
    return repository.page_members(session, pie_set_id, offset=offset, limit=limit, is_pie=is_pie)


@dataclass(frozen=True)
class ShownPie:
    image_id: int
    external_id: str
    score: float | None
    rank: int | None
    labels: list[str]


@dataclass(frozen=True)
class Overview:
    """What the researcher's page of a PIE set shows."""

    dataset: Dataset
    scores: list[float]  # every defined score
    undefined: int  # members whose score is undefined
    threshold: float | None  # the highest PIE score
    pies: list[ShownPie]  # the first `shown` PIEs by rank, with their labels


def overview(session: Session, pie_set: PieSet, *, shown: int) -> Overview:
    dataset = get_dataset(session, pie_set.dataset_id)
    _, members = repository.page_members(
        session, pie_set.id, offset=0, limit=pie_set.member_count, is_pie=None
    )
    scores = [row.member.score for row in members if row.member.score is not None]
    pies = [row for row in members if row.member.is_pie]
    first = pies[:shown]
    ids = [r.member.image_id for r in first]
    labels = {i.id: i.labels for i in datasets_repo.images_by_ids(session, ids)}

    def names(image_id: int) -> list[str]:
        return [c for c, v in zip(dataset.classes, labels[image_id], strict=True) if v]

    return Overview(
        dataset=dataset,
        scores=scores,
        undefined=len(members) - len(scores),
        threshold=max((r.member.score for r in pies if r.member.score is not None), default=None),
        pies=[
            ShownPie(
                r.member.image_id,
                r.external_id,
                r.member.score,
                r.member.rank,
                names(r.member.image_id),
            )
            for r in first
        ],
    )
