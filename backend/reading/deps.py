"""Who is reading: the reader session cookie made from an invitation link."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from backend.config import Settings
from backend.db import SessionDep
from backend.errors import UnauthorizedError
from backend.reading import service
from backend.studies.models import Reader
from backend.templating import PageError

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
    if not request.cookies.get(READER_COOKIE):
        raise UnauthorizedError("open your invitation link to start reading")
    reader = signed_in_reader(request, session)
    if reader is None:
        raise UnauthorizedError("this reading session has ended; open your invitation link again")
    return reader


def current_reader_page(request: Request, session: SessionDep) -> Reader:
    """The page guard of the reader's pages: without a reading session, a page that says how
    to get one."""
    reader = signed_in_reader(request, session)
    if reader is None:
        raise PageError(
            "Open the invitation link you were sent to start or resume reading.",
            status_code=401, title="This link is not valid",
        )  # fmt: skip
    return reader


CurrentReader = Annotated[Reader, Depends(current_reader)]
ReaderPage = Annotated[Reader, Depends(current_reader_page)]
