"""A case's image as a reader receives it: a rendering of the dataset's file, never the file.
Cases are addressed by position (blinding); see backend.derivatives for the renderings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

from sqlalchemy.orm import Session

from backend.derivatives import Kind, derived_image, rendering
from backend.errors import AppError, NotFoundError
from backend.reading import repository
from backend.reading.schemas import ReaderRendering
from backend.reading.service import case_assignment
from backend.studies.models import Reader
from ml.data.labels import resolve_image
from ml.data.radiograph import ImageReadError

log = logging.getLogger(__name__)
T = TypeVar("T")


class ImageUnavailableError(AppError):
    status_code = 503


def _case_source(session: Session, reader: Reader, position: int) -> tuple[Path, int]:
    """The dataset's file of a case (never sent to a reader) and the image's database id."""
    assignment = case_assignment(session, reader, position)
    image, dataset, _ = repository.case_image(session, assignment.id)
    path = resolve_image(Path(dataset.image_root), image.file_path)
    if path is None or not path.is_file():
        raise NotFoundError("the image of this case is not available; tell the study coordinator")
    return path, image.id


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
    source, image_id = _case_source(session, reader, position)
    return _rendered(lambda p: derived_image(p, kind, media_dir), source, image_id)


def case_rendering(
    session: Session, reader: Reader, position: int, media_dir: Path
) -> ReaderRendering:
    source, image_id = _case_source(session, reader, position)
    info = asdict(_rendered(lambda p: rendering(p, media_dir), source, image_id))
    return ReaderRendering(image_url=f"/api/reader/cases/{position}/image?size=full", **info)
