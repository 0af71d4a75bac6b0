"""Reader HTML routes: the invitation link, the welcome page, the case page, the end page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backend.db import SessionDep
from backend.reading import service
from backend.reading.deps import READER_COOKIE
from backend.reading.router import set_reader_cookie
from backend.studies.models import Reader
from backend.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/r/{token}")
def invitation(token: str, request: Request, session: SessionDep) -> Response:
    try:
        _reader, session_token = service.start_session(session, token)
    except service.InvitationError as exc:
        return templates.TemplateResponse(
            request, "reader/error.html", {"message": exc.message}, status_code=404
        )
    # Redirect so that the token leaves the address bar and the browser history.
    response = RedirectResponse("/read", status_code=303)
    set_reader_cookie(response, request.app.state.settings, session_token)
    response.headers["cache-control"] = "no-store"
    return response


def _reader_or_page(request: Request, session: SessionDep) -> Reader | Response:
    token = request.cookies.get(READER_COOKIE)
    reader = service.reader_for_session(session, token) if token else None
    if reader is None:
        return templates.TemplateResponse(
            request,
            "reader/error.html",
            {"message": "Open the invitation link you were sent to start or resume reading."},
            status_code=401,
        )
    return reader


@router.get("/read", response_class=HTMLResponse)
def welcome(request: Request, session: SessionDep) -> Response:
    reader = _reader_or_page(request, session)
    if isinstance(reader, Response):
        return reader
    me = service.me(session, reader)
    return templates.TemplateResponse(request, "reader/welcome.html", {"me": me})


@router.get("/read/cases/{position}", response_class=HTMLResponse)
def case_page(position: int, request: Request, session: SessionDep) -> Response:
    reader = _reader_or_page(request, session)
    if isinstance(reader, Response):
        return reader
    me = service.me(session, reader)
    if not 1 <= position <= me.progress.total:
        return RedirectResponse("/read", status_code=303)
    context = {"me": me, "position": position, "questions": service.QUESTIONS}
    return templates.TemplateResponse(request, "reader/case.html", context)


@router.get("/read/done", response_class=HTMLResponse)
def done_page(request: Request, session: SessionDep) -> Response:
    reader = _reader_or_page(request, session)
    if isinstance(reader, Response):
        return reader
    me = service.me(session, reader)
    return templates.TemplateResponse(request, "reader/done.html", {"me": me})
