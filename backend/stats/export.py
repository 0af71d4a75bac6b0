"""Streamed exports of a study's responses: long CSV (MRMC tools), wide CSV, JSON.

Each is a generator of text chunks over a streamed query, so memory stays flat however many
readers a study has. Text cells that a spreadsheet would run as a formula are escaped.
Each reader's profile (the study's profile questions) follows in columns profile_<key>.
Practice cases are not in the rows (backend.stats.repository.response_rows).

Every format carries what the reader was shown and said: the image's labels (joined by "|", as
ChestX-ray14 writes them), the answers, the reader's flag and comment and profile; and, as these
exports are the coordinator's, the image's PIE score and its rank in the PIE set.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from backend.stats.repository import ResponseRow, RevisionRow
from backend.studies.models import Study

LONG_HEADER = [
    "study_id", "study", "reader_id", "reader", "case_id", "image", "labels", "group", "pie_score",
    "pie_rank", "overlap", "question", "answer", "answered_at", "seconds_on_case", "flagged", "comment",
]  # fmt: skip
WIDE_HEADER = [
    "study_id", "study", "reader_id", "reader", "case_id", "image", "labels", "group", "pie_score",
    "pie_rank", "overlap", "position", "agree", "quality", "difficulty", "seconds_on_case",
    "first_opened_at", "completed_at", "revisions", "flagged", "comment",
]  # fmt: skip
LABEL_SEPARATOR = "|"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def download_headers(study: Study, kind: str, extension: str) -> dict[str, str]:
    """A download's headers: the file name from the study's id and name."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", study.name).strip("-")[:60] or "study"
    filename = f"piestudy-{study.id}-{slug}-{kind}.{extension}"
    return {"content-disposition": f'attachment; filename="{filename}"'}


def safe_cell(text: str) -> str:
    """Neutralize spreadsheet formulas (CSV injection): prefix a quote to a leading = + - @."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _time(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _group(row: ResponseRow) -> str:
    return "PIE" if row.is_pie else "non-PIE"


def _agree(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


def _shown(row: ResponseRow) -> list[Any]:
    """labels, group, PIE score and rank: the columns after the image's id."""
    labels = safe_cell(LABEL_SEPARATOR.join(row.labels))
    rank = "" if row.pie_rank is None else row.pie_rank
    return [labels, _group(row), _number(row.pie_score), rank]


def _csv_lines(
    header: list[str], rows: Iterable[list[Any]], flush_every: int = 500
) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for i, row in enumerate(rows, start=1):
        writer.writerow(row)
        if i % flush_every == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _profile_keys(study: Study) -> list[str]:
    return [f["key"] for f in study.profile_fields]


def _profile_cells(keys: list[str], row: ResponseRow) -> list[Any]:
    given = row.profile or {}
    return [safe_cell(v) if isinstance(v := given.get(k, ""), str) else v for k in keys]


def long_csv(study: Study, rows: Iterable[ResponseRow]) -> Iterator[str]:
    """One row per reader x case x question; an unanswered question has an empty answer."""

    keys = _profile_keys(study)

    def lines() -> Iterator[list[Any]]:
        name = safe_cell(study.name)
        for r in rows:
            profile = _profile_cells(keys, r)
            base = [
                study.id, name, r.reader_id, safe_cell(r.reader), r.case_id, safe_cell(r.image),
                *_shown(r), int(r.is_overlap),
            ]  # fmt: skip
            after = [
                _seconds(r.seconds_on_case),
                int(r.flagged),
                safe_cell(r.comment or ""),
                *profile,
            ]
            yield [*base, "agree", _agree(r.agree), _time(r.agree_at), *after]
            yield [*base, "quality", r.quality or "", _time(r.quality_at), *after]
            yield [*base, "difficulty", r.difficulty or "", _time(r.difficulty_at), *after]

    return _csv_lines(LONG_HEADER + [f"profile_{k}" for k in keys], lines())


def wide_csv(study: Study, rows: Iterable[ResponseRow]) -> Iterator[str]:
    """One row per reader x case."""
    keys = _profile_keys(study)

    def lines() -> Iterator[list[Any]]:
        name = safe_cell(study.name)
        for r in rows:
            yield [
                study.id, name, r.reader_id, safe_cell(r.reader), r.case_id, safe_cell(r.image), *_shown(r),
                int(r.is_overlap), r.position, _agree(r.agree), r.quality or "", r.difficulty or "",
                _seconds(r.seconds_on_case), _time(r.first_opened_at), _time(r.completed_at), r.revisions,
                int(r.flagged), safe_cell(r.comment or ""), *_profile_cells(keys, r),
            ]  # fmt: skip

    return _csv_lines(WIDE_HEADER + [f"profile_{k}" for k in keys], lines())


def as_json(study: Study, rows: Iterable[ResponseRow]) -> Iterator[str]:
    head = {
        "id": study.id,
        "name": study.name,
        "pie_set_id": study.pie_set_id,
        "cases_per_reader": study.cases_per_reader,
        "pie_fraction": study.pie_fraction,
        "overlap_cases": study.overlap_cases,
        "practice_cases": study.practice_cases,
        "seed": study.seed,
        "status": study.status.value,
        "profile_fields": study.profile_fields,
    }
    yield '{"study": ' + json.dumps(head) + ', "responses": ['
    for i, r in enumerate(rows):
        item = {
            "reader_id": r.reader_id,
            "reader": r.reader,
            "case_id": r.case_id,
            "image": r.image,
            "labels": list(r.labels),
            "group": _group(r),
            "pie_score": r.pie_score,
            "pie_rank": r.pie_rank,
            "overlap": r.is_overlap,
            "position": r.position,
            "agree": r.agree,
            "quality": r.quality,
            "difficulty": r.difficulty,
            "answered_at": {"agree": _time(r.agree_at) or None, "quality": _time(r.quality_at) or None,
                            "difficulty": _time(r.difficulty_at) or None},
            "seconds_on_case": r.seconds_on_case,
            "first_opened_at": _time(r.first_opened_at) or None,
            "completed_at": _time(r.completed_at) or None,
            "revisions": r.revisions,
            "flagged": r.flagged,
            "comment": r.comment,
            "profile": r.profile,
        }  # fmt: skip
        yield ("," if i else "") + json.dumps(item)
    yield "]}"


AUDIT_HEADER = [
    "study_id", "reader_id", "reader", "case_id", "image", "group", "overlap", "practice",
    "position", "revision", "client_answer_id", "agree", "quality", "difficulty", "flagged",
    "comment", "active_seconds", "client_sent_at", "received_at",
]  # fmt: skip


def audit_csv(study: Study, rows: Iterable[RevisionRow]) -> Iterator[str]:
    """Every save of every answer, as received: what each reader sent, when their browser sent
    it (client_sent_at, the browser's clock) and when the server received it. A field the save
    left out is empty (the save kept the earlier value)."""

    def flag(value: bool | None) -> str:
        return "" if value is None else str(int(value))

    def lines() -> Iterator[list[Any]]:
        for r in rows:
            yield [
                study.id, r.reader_id, safe_cell(r.reader), r.case_id, safe_cell(r.image),
                "PIE" if r.is_pie else "non-PIE", int(r.is_overlap), int(r.practice), r.position,
                r.revision, safe_cell(r.client_answer_id), _agree(r.agree), r.quality or "",
                r.difficulty or "", flag(r.flagged), safe_cell(r.comment or ""),
                _seconds(r.active_seconds), _time(r.client_sent_at), _time(r.received_at),
            ]  # fmt: skip

    return _csv_lines(AUDIT_HEADER, lines())
