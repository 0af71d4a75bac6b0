"""A case's image as a reader receives it: a rendering of the dataset's file, never the file.
Cases are addressed by position (blinding); see backend.derivatives for the renderings."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

from sqlalchemy.orm import Session

from backend.derivatives import Kind, derived_image, rendering
from backend.errors import AppError, NotFoundError
from backend.reading import repository
from backend.reading.schemas import ReaderCase, ReaderRendering
from backend.reading.service import case_image, get_case
from backend.studies.models import Reader
from ml.data.labels import resolve_image
from ml.data.radiograph import ImageReadError

log = logging.getLogger(__name__)
T = TypeVar("T")


class ImageUnavailableError(AppError):
    status_code = 503


def _source(found: repository.CaseImage) -> Path:
    """The dataset's file of a case (never sent to a reader)."""
    path = resolve_image(Path(found.dataset.image_root), found.image.file_path)
    if path is None or not path.is_file():
        raise NotFoundError("the image of this case is not available; tell the study coordinator")
    return path


def _rendered(make: Callable[[Path], T], source: Path, image_id: int) -> T:
    try:
        return make(source)
    except (ImageReadError, OSError) as exc:
        # Neither the file's name nor the decoder's words go to the log or the reader: either
        # could carry a patient's name. The image id finds the file for the coordinator.
        log.error("image %d cannot be rendered for a reader (%s)", image_id, type(exc).__name__)
        raise ImageUnavailableError(
            "the image of this case cannot be shown; tell the study coordinator"
        ) from None


def case_image_path(
    session: Session, reader: Reader, position: int, kind: Kind, media_dir: Path
) -> Path:
    """A rendering of the case's image (FULL or DISPLAY), made on first use."""
    found = case_image(session, reader, position)
    return _rendered(lambda p: derived_image(p, kind, media_dir), _source(found), found.image.id)


def _rendering_of(found: repository.CaseImage, position: int, media_dir: Path) -> ReaderRendering:
    info = asdict(_rendered(lambda p: rendering(p, media_dir), _source(found), found.image.id))
    return ReaderRendering(image_url=f"/api/reader/cases/{position}/image?size=full", **info)


def case_rendering(
    session: Session, reader: Reader, position: int, media_dir: Path
) -> ReaderRendering:
    """How to window the case's full rendering (made on first use); ImageUnavailableError."""
    return _rendering_of(case_image(session, reader, position), position, media_dir)


def case_with_rendering(
    session: Session, reader: Reader, position: int, media_dir: Path
) -> ReaderCase:
    """The case and its rendering in one answer: one request fewer for every case read."""
    found = case_image(session, reader, position)
    case = get_case(session, reader, position, found)
    # where the image cannot be rendered, its image request says why, as it would without this
    with contextlib.suppress(ImageUnavailableError, NotFoundError):
        case.rendering = _rendering_of(found, position, media_dir)
    return case
