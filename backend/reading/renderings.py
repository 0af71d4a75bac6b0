"""Renderings made ahead: every image of a study, as readers will ask for it (the display copy
and the full rendering), so that no reader waits for an image to be decoded and encoded.

Run in the background when a study opens or gains readers (Settings.prerender), by
`piestudy study render`, and by the demo. Images that cannot be rendered are counted and logged
by their database id only (their file names may carry a patient's name).
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from backend.derivatives import DISPLAY, FULL, derivative_path, derived_image
from backend.reading import repository
from ml.data.radiograph import ImageReadError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderReport:
    images: int
    made: int  # renderings made now (the others existed)
    failed: int
    seconds: float


def _render(source: Path, image_id: int, media_dir: Path) -> tuple[int, bool]:
    made = 0
    try:
        for kind in (DISPLAY, FULL):
            if not derivative_path(source, kind, media_dir).is_file():
                derived_image(source, kind, media_dir)
                made += 1
    except (ImageReadError, OSError) as exc:
        log.error("image %d cannot be rendered for readers (%s)", image_id, type(exc).__name__)
        return made, False
    return made, True


def render_study(
    sessions: sessionmaker[Session], study_id: int, media_dir: Path, workers: int | None = None
) -> RenderReport:
    """Make the renderings of every image of the study that lack them."""
    start = time.perf_counter()
    with sessions() as session:
        sources = repository.study_sources(session, study_id)
    workers = workers or max(1, min(4, (os.cpu_count() or 2) - 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda s: _render(s[0], s[1], media_dir), sources))
    report = RenderReport(
        images=len(sources),
        made=sum(m for m, _ in results),
        failed=sum(not ok for _, ok in results),
        seconds=time.perf_counter() - start,
    )
    log.info(
        "study %d: %d images, %d renderings made, %d failed, %.1f s",
        study_id, report.images, report.made, report.failed, report.seconds,
    )  # fmt: skip
    return report
