"""The reader's JSON API. Every response model is a ReaderSchema (blinded by type)."""

from __future__ import annotations

from collections.abc import Callable
from email.utils import format_datetime
from typing import Annotated, Any, Literal, TypeVar

import anyio
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import FileResponse

from backend.config import Settings
from backend.db import ReadSessionDep, SessionDep, run_write
from backend.derivatives import DISPLAY, FULL
from backend.reading import images, repository, service
from backend.reading.deps import (
    READER_COOKIE,
    CurrentReader,
    ReaderToken,
    ReadingReader,
    reader_of,
    session_token,
    set_reader_cookie,
)
from backend.reading.schemas import (
    MAX_POSITION,
    READER_KEY_HEADER,
    AnswerIn,
    AnswerSaved,
    CaseList,
    CasesAhead,
    ProfileIn,
    ReaderCase,
    ReaderMe,
    ReaderRendering,
    SessionRequest,
)
from backend.timeutil import utcnow

router = APIRouter(prefix="/api/reader", tags=["reader"])
Position = Annotated[int, Path(ge=1, le=MAX_POSITION)]
IMAGE_MAX_AGE = 7 * 24 * 3600
T = TypeVar("T")


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


@router.get("/cases/ahead", response_model=CasesAhead)
async def cases_ahead(request: Request) -> CasesAhead:
    """Every case of the reader with its rendering's description, in one answer, for the page
    to keep for reading offline (one request instead of one a case); not counted as views."""
    settings: Settings = request.app.state.settings
    cases = await _as_reader(request, images.reader_cases, settings.resolved_media_dir)
    return CasesAhead(cases=cases)


@router.get("/cases/{position}", response_model=ReaderCase)
async def get_case(
    position: Position,
    request: Request,
    prefetch: Annotated[
        bool, Query(description="fetched ahead for offline reading: not counted as a view")
    ] = False,
) -> ReaderCase:
    settings: Settings = request.app.state.settings
    case, assignment_id = await _as_reader(
        request, images.reader_case, position, settings.resolved_media_dir
    )
    if not prefetch:  # a view: the one write here, in a short transaction of its own
        await run_write(request, lambda s: repository.record_view(s, assignment_id, utcnow()))
    return case


@router.get("/cases/{position}/rendering", response_model=ReaderRendering)
async def case_rendering(position: Position, request: Request) -> ReaderRendering:
    """How to window the case's full rendering (made on first use, outside the write lock)."""
    settings: Settings = request.app.state.settings
    return await _as_reader(request, images.reader_rendering, position, settings.resolved_media_dir)


async def _as_reader(request: Request, work: Callable[..., T], *args: Any) -> T:
    """`work(read_engine, token, claimed reader key, *args)` (see images) in one worker-thread
    hop, through a read slot."""
    token = session_token(request)
    claimed = request.headers.get(READER_KEY_HEADER)
    async with request.app.state.read_slots:
        return await anyio.to_thread.run_sync(
            work, request.app.state.read_engine, token, claimed, *args
        )


@router.get("/cases/{position}/image", response_class=FileResponse)
async def case_image(
    position: Position,
    request: Request,
    size: Annotated[
        Literal["full", "display"],
        Query(description="full: the 16-bit full-range rendering; display: 8-bit, ≤ 1024 px"),
    ] = "full",
) -> Response:
    """A rendering of the case's image, never the dataset's file: no metadata, a name that
    says nothing. Made on first use, through a read-only connection (no write lock held).

    The most frequent request of a reading session (two a case): one worker-thread hop, for a
    read slot's query and the file, instead of one for each dependency, the route and every
    64 KB of the file."""
    settings: Settings = request.app.state.settings
    kind = DISPLAY if size == "display" else FULL
    secret = settings.secret_key.get_secret_value().encode()
    sent = await _as_reader(
        request, images.reader_image, position, kind, settings.resolved_media_dir, secret
    )
    headers = {
        "etag": sent.etag,
        "cache-control": f"private, max-age={IMAGE_MAX_AGE}",
        "last-modified": format_datetime(sent.last_modified, usegmt=True),
    }
    if sent.etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(sent.body, media_type="image/png", headers=headers)


@router.post("/cases/{position}/answer", response_model=AnswerSaved)
async def save_answer(
    position: Position, body: AnswerIn, request: Request, token: ReaderToken
) -> AnswerSaved:
    """One worker-thread hop through a write slot: the reader, the save and its commit."""
    claimed = request.headers.get(READER_KEY_HEADER)
    return await run_write(
        request, lambda s: service.save_answer(s, reader_of(s, token, claimed), position, body)
    )
