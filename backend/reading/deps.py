"""Who is reading: the reader session cookie made from an invitation link."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backend.db import SessionDep
from backend.errors import UnauthorizedError
from backend.reading import service
from backend.studies.models import Reader

READER_COOKIE = "piestudy_reader"


def current_reader(request: Request, session: SessionDep) -> Reader:
    token = request.cookies.get(READER_COOKIE)
    if not token:
        raise UnauthorizedError("open your invitation link to start reading")
    reader = service.reader_for_session(session, token)
    if reader is None:
        raise UnauthorizedError("this reading session has ended; open your invitation link again")
    return reader


CurrentReader = Annotated[Reader, Depends(current_reader)]
