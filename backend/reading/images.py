"""A case's image as a reader receives it: a rendering of the dataset's file, never the file.
Cases are addressed by position (blinding); see backend.derivatives for the renderings."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine

from backend.auth.tokens import hash_token
from backend.datasets.models import shown_labels
from backend.derivatives import Kind, derived_image, rendering
from backend.errors import AppError, NotFoundError
from backend.reading import repository
from backend.reading.deps import check_reader, signed_out
from backend.reading.schemas import AnswerState, ReaderCase, ReaderRendering
from ml.data.labels import resolve_image
from ml.data.radiograph import ImageReadError

log = logging.getLogger(__name__)
T = TypeVar("T")


UNAVAILABLE = "the image of this case is not available; tell the study coordinator"


class ImageUnavailableError(AppError):
    status_code = 503


def _source(found: repository.CaseAccess) -> tuple[Path, int]:
    """The dataset's file of a case (never sent to a reader), and the image's id."""
    assert found.image_root is not None and found.file_path is not None
    assert found.image_id is not None
    path = resolve_image(Path(found.image_root), found.file_path)
    if path is None or not path.is_file():
        raise NotFoundError(UNAVAILABLE)
    return path, found.image_id


def _rendered(make: Callable[[Path], T], found: repository.CaseAccess) -> T:
    source, image_id = _source(found)
    try:
        return make(source)
    except (ImageReadError, OSError) as exc:
        # Neither the file's name nor the decoder's words go to the log or the reader: either
        # could carry a patient's name. The image id finds the file for the coordinator.
        log.error("image %d cannot be rendered for a reader (%s)", image_id, type(exc).__name__)
        raise ImageUnavailableError(
            "the image of this case cannot be shown; tell the study coordinator"
        ) from None


def _access(
    engine: Engine, token: str, claimed_key: str | None, position: int
) -> repository.CaseAccess:
    """The session's reader, checked as every reader request is (deps.check_reader), and its
    case at `position` (NotFoundError without one): one query, on a connection held only for
    it. The reader's case and image routes are most of a reading session's requests: each is
    one worker-thread hop, where dependencies, route and file took one each (and the ORM
    most of their time)."""
    with engine.connect() as conn:
        found = repository.case_access(conn, hash_token(token), position)
    if found is None:
        raise signed_out()
    check_reader(found.revoked_at, found.client_key, claimed_key)
    if found.assignment_id is None or found.image_id is None:
        raise NotFoundError(f"there is no case {position}")
    return found


@dataclass(frozen=True)
class SentImage:
    """A rendering as a reader receives it: its bytes, and what its headers say."""

    body: bytes
    etag: str
    last_modified: datetime  # the study's date, not the file's: file times could hint at how
    # the images were prepared


def reader_image(
    engine: Engine, token: str, claimed_key: str | None, position: int, kind: Kind,
    media_dir: Path, secret: bytes,
) -> SentImage:  # fmt: skip
    """The reader's case image (FULL or DISPLAY rendering, made on first use), read whole."""
    found = _access(engine, token, claimed_key, position)
    path = _rendered(lambda p: derived_image(p, kind, media_dir), found)
    with path.open("rb") as f:
        stat = os.fstat(f.fileno())
        body = f.read()
    # An opaque validator: it changes when the file does, and says nothing about the image.
    what = f"{found.reader_id}:{position}:{kind.folder}:{stat.st_size}:{stat.st_mtime_ns}"
    etag = hmac.new(secret, what.encode(), hashlib.sha256).hexdigest()[:32]
    return SentImage(body, f'"{etag}"', found.study_created_at)


def _rendering_of(found: repository.CaseAccess, position: int, media_dir: Path) -> ReaderRendering:
    info = asdict(_rendered(lambda p: rendering(p, media_dir), found))
    return ReaderRendering(image_url=f"/api/reader/cases/{position}/image?size=full", **info)


def reader_rendering(
    engine: Engine, token: str, claimed_key: str | None, position: int, media_dir: Path
) -> ReaderRendering:
    """How to window the case's full rendering (made on first use); ImageUnavailableError."""
    return _rendering_of(_access(engine, token, claimed_key, position), position, media_dir)


def reader_case(
    engine: Engine, token: str, claimed_key: str | None, position: int, media_dir: Path
) -> tuple[ReaderCase, int]:
    """The case and its rendering in one answer (one request fewer for every case read), and
    its assignment's id (for recording the view)."""
    found = _access(engine, token, claimed_key, position)
    assert found.assignment_id is not None
    return _case_of(found, media_dir), found.assignment_id


def reader_cases(
    engine: Engine, token: str, claimed_key: str | None, media_dir: Path
) -> list[ReaderCase]:
    """Every case of the session's reader, as reader_case gives each: one query."""
    with engine.connect() as conn:
        rows = repository.every_case_access(conn, hash_token(token))
    if not rows:
        raise signed_out()
    check_reader(rows[0].revoked_at, rows[0].client_key, claimed_key)
    return [_case_of(row, media_dir) for row in rows if row.assignment_id is not None]


def _case_of(found: repository.CaseAccess, media_dir: Path) -> ReaderCase:
    position = found.position
    assert position is not None and found.classes is not None and found.labels is not None
    answer = None
    if found.answered:
        answer = AnswerState(
            agree=found.agree, quality=found.quality, difficulty=found.difficulty,
            flagged=bool(found.flagged), comment=found.comment,
            active_seconds=found.active_seconds or 0.0, complete=found.completed_at is not None,
            updated_at=found.updated_at,
        )  # fmt: skip
    case = ReaderCase(
        position=position, total=found.total, practice=bool(found.practice),
        labels=shown_labels(found.classes, found.labels),
        image_url=f"/api/reader/cases/{position}/image", answer=answer,
        previous_position=position - 1 if position > 1 else None,
        next_position=position + 1 if position < found.total else None,
    )  # fmt: skip
    # where the image cannot be rendered, its image request says why, as it would without this
    with contextlib.suppress(ImageUnavailableError, NotFoundError):
        case.rendering = _rendering_of(found, position, media_dir)
    return case
