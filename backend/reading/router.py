"""The reader's JSON API. Every response model is a ReaderSchema (blinded by type)."""

from __future__ import annotations

import hashlib
import hmac
import os
from email.utils import format_datetime
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import FileResponse

from backend.config import Settings
from backend.db import ReadSessionDep, SessionDep, run_write
from backend.derivatives import DISPLAY, FULL
from backend.reading import images, service
from backend.reading.deps import READER_COOKIE, CurrentReader, ReadingReader, set_reader_cookie
from backend.reading.schemas import (
    MAX_POSITION,
    AnswerIn,
    AnswerSaved,
    CaseList,
    ProfileIn,
    ReaderCase,
    ReaderMe,
    ReaderRendering,
    SessionRequest,
)

router = APIRouter(prefix="/api/reader", tags=["reader"])
Position = Annotated[int, Path(ge=1, le=MAX_POSITION)]
IMAGE_MAX_AGE = 7 * 24 * 3600


@router.post("/session", response_model=ReaderMe)
def start_session(
    body: SessionRequest, request: Request, response: Response, session: SessionDep
) -> ReaderMe:
    """Exchange an invitation token for a reader session (sets the cookie)."""
    reader, token = service.start_session(session, body.invitation_token)
    set_reader_cookie(response, request.app.state.settings, token)
    return service.me(session, reader)


@router.delete("/session", status_code=204)
def end_session(
    request: Request, response: Response, session: SessionDep, _reader: CurrentReader
) -> None:
    token = request.cookies.get(READER_COOKIE)
    if token:
        service.end_session(session, token)
    response.delete_cookie(READER_COOKIE)


# The routes that only read go through read-only sessions (backend.db.get_read_session): a page
# fetching its cases ahead never queues the answer saves behind it.


@router.get("/me", response_model=ReaderMe)
def me(session: ReadSessionDep, reader: ReadingReader) -> ReaderMe:
    return service.me(session, reader)


@router.put("/profile", response_model=ReaderMe)
def give_profile(body: ProfileIn, session: SessionDep, reader: CurrentReader) -> ReaderMe:
    """The reader's answers to the study's profile questions; given once."""
    return service.give_profile(session, reader, body)


@router.get("/cases", response_model=CaseList)
def list_cases(session: ReadSessionDep, reader: ReadingReader) -> CaseList:
    return service.list_cases(session, reader)


@router.get("/cases/{position}", response_model=ReaderCase)
async def get_case(
    position: Position,
    request: Request,
    session: ReadSessionDep,
    reader: ReadingReader,
    prefetch: Annotated[
        bool, Query(description="fetched ahead for offline reading: not counted as a view")
    ] = False,
) -> ReaderCase:
    settings: Settings = request.app.state.settings
    case = await anyio.to_thread.run_sync(
        images.case_with_rendering, session, reader, position, settings.resolved_media_dir
    )
    if not prefetch:  # a view: the one write here, in a short transaction of its own
        reader_id = reader.id
        await run_write(request, lambda s: service.record_view(s, reader_id, position))
    return case


@router.get("/cases/{position}/rendering", response_model=ReaderRendering)
def case_rendering(
    position: Position, request: Request, session: ReadSessionDep, reader: ReadingReader
) -> ReaderRendering:
    """How to window the case's full rendering (made on first use, outside the write lock)."""
    settings: Settings = request.app.state.settings
    return images.case_rendering(session, reader, position, settings.resolved_media_dir)


@router.get("/cases/{position}/image", response_class=FileResponse)
def case_image(
    position: Position,
    request: Request,
    session: ReadSessionDep,
    reader: ReadingReader,
    size: Annotated[
        Literal["full", "display"],
        Query(description="full: the 16-bit full-range rendering; display: 8-bit, ≤ 1024 px"),
    ] = "full",
) -> Response:
    """A rendering of the case's image, never the dataset's file: no metadata, a name that
    says nothing. Made on first use, through a read-only session (no write lock held)."""
    settings: Settings = request.app.state.settings
    kind = DISPLAY if size == "display" else FULL
    path = images.case_image_path(session, reader, position, kind, settings.resolved_media_dir)
    study = reader.study
    stat = os.stat(path)
    # An opaque validator: it changes when the file does, and says nothing about the image.
    key = settings.secret_key.get_secret_value().encode()
    mac = hmac.new(
        key,
        f"{reader.id}:{position}:{size}:{stat.st_size}:{stat.st_mtime_ns}".encode(),
        hashlib.sha256,
    )
    etag = f'"{mac.hexdigest()[:32]}"'
    headers = {
        "etag": etag,
        "cache-control": f"private, max-age={IMAGE_MAX_AGE}",
        # the study's date, not the file's: file times could hint at how images were prepared
        "last-modified": format_datetime(study.created_at, usegmt=True),
    }
    if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    media_type = "image/png"
    return _WholeFile(path, media_type=media_type, headers=headers, stat_result=stat)


class _WholeFile(FileResponse):
    # Starlette reads a file 64 KB at a time, a worker thread for each read: 30 round trips
    # for a 2 MB full rendering. A rendering is sent in a few reads instead.
    chunk_size = 1024 * 1024


@router.post("/cases/{position}/answer", response_model=AnswerSaved)
def save_answer(
    position: Position, body: AnswerIn, session: SessionDep, reader: CurrentReader
) -> AnswerSaved:
    return service.save_answer(session, reader, position, body)
