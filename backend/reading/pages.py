"""Reader HTML routes: the invitation link and the welcome page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backend.db import SessionDep
from backend.reading import service
from backend.reading.deps import READER_COOKIE
from backend.reading.router import set_reader_cookie
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


@router.get("/read", response_class=HTMLResponse)
def welcome(request: Request, session: SessionDep) -> Response:
    token = request.cookies.get(READER_COOKIE)
    reader = service.reader_for_session(session, token) if token else None
    if reader is None:
        return templates.TemplateResponse(
            request,
            "reader/error.html",
            {"message": "Open the invitation link you were sent to start or resume reading."},
            status_code=401,
        )
    return templates.TemplateResponse(
        request, "reader/welcome.html", {"me": service.me(session, reader)}
    )
