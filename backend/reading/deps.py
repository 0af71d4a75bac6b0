"""Who is reading: the reader session cookie made from an invitation link."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.db import ReadSessionDep, SessionDep
from backend.errors import UnauthorizedError
from backend.reading import service
from backend.reading.schemas import READER_KEY_HEADER
from backend.studies.models import Reader
from backend.templating import PageError, as_sentence

READER_COOKIE = "piestudy_reader"


def set_reader_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        READER_COOKIE,
        token,
        max_age=180 * 24 * 3600,  # a study runs for weeks; revoking the link ends it earlier
        httponly=True,
        samesite="lax",
        secure=settings.env == "production",
    )


def signed_in_reader(request: Request, session: SessionDep) -> Reader | None:
    token = request.cookies.get(READER_COOKIE)
    return service.reader_for_session(session, token) if token else None


def current_reader(request: Request, session: SessionDep) -> Reader:
    return _reader_of(request, session)


def reading_reader(request: Request, session: ReadSessionDep) -> Reader:
    """current_reader, through a read-only session (for the image routes)."""
    return _reader_of(request, session)


def _reader_of(request: Request, session: Session) -> Reader:
    return reader_of(session, session_token(request), request.headers.get(READER_KEY_HEADER))


def reader_of(session: Session, token: str, claimed: str | None) -> Reader:
    """The reader of a reader session's token. A browser holds one reader session, whoever's
    link was opened last there; a reading page says whose it is with the x-reader-key header
    (`claimed`), and a page of another reader (a tab left open on a shared workstation) is
    refused, so that its answers wait in that browser for their own reader instead of going to
    this one."""
    reader = service.session_reader(session, token)
    if reader is None:
        raise signed_out()
    check_reader(reader.revoked_at, reader.client_key, claimed)
    return reader


def session_token(request: Request) -> str:
    """The reader session cookie's token; UnauthorizedError without one."""
    token = request.cookies.get(READER_COOKIE)
    if not token:
        raise UnauthorizedError("open your invitation link to start reading")
    return token


async def reader_token(request: Request) -> str:
    """session_token as a dependency (on the event loop: no worker-thread hop), so that a
    request without a reader session is refused before its body is looked at."""
    return session_token(request)


ReaderToken = Annotated[str, Depends(reader_token)]


def signed_out() -> UnauthorizedError:
    return UnauthorizedError(
        "this reading session has ended; open your invitation link again",
        detail={"reason": "signed_out"},
    )


def check_reader(revoked_at: datetime | None, client_key: str, claimed: str | None) -> None:
    """A withdrawn reader, or a page of another reader than the session's, is refused."""
    if revoked_at is not None:
        raise UnauthorizedError(service.WITHDRAWN, detail={"reason": "withdrawn"})
    if claimed is not None and not hmac.compare_digest(claimed, client_key):
        raise UnauthorizedError(
            "this browser is now signed in as another reader; open your own invitation link"
            " again to go on (your answers are kept in this browser until then)",
            detail={"reason": "other_reader"},
        )


def current_reader_page(request: Request, session: SessionDep) -> Reader:
    """The page guard of the reader's pages: without a reading session, a page that says how
    to get one."""
    token = request.cookies.get(READER_COOKIE)
    reader = service.session_reader(session, token) if token else None
    if reader is not None and reader.revoked_at is not None:
        raise PageError(
            as_sentence(service.WITHDRAWN),
            status_code=401, title="This link was withdrawn",
        )  # fmt: skip
    if reader is None:
        raise PageError(
            "Open the invitation link you were sent to start or resume reading.",
            status_code=401, title="This link is not valid",
        )  # fmt: skip
    return reader


CurrentReader = Annotated[Reader, Depends(current_reader)]
ReadingReader = Annotated[Reader, Depends(reading_reader)]
ReaderPage = Annotated[Reader, Depends(current_reader_page)]
