"""Reader HTML routes: the invitation link, the welcome page, the case page, the end page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backend.db import SessionDep, run_write
from backend.reading import service
from backend.reading.deps import ReaderPage, set_reader_cookie
from backend.reading.schemas import INVITATION_TOKEN_MAX, MAX_POSITION
from backend.templating import PageError, as_sentence, templates

router = APIRouter(include_in_schema=False)
PagePosition = Annotated[int, Path(ge=1, le=MAX_POSITION)]
InvitationToken = Annotated[str, Path(min_length=1, max_length=INVITATION_TOKEN_MAX)]


@router.get("/r/{token}")
async def invitation(token: InvitationToken, request: Request) -> Response:
    # one worker-thread hop through a write slot (a room of readers opens its links at once)
    try:
        _reader, session_token = await run_write(request, lambda s: service.start_session(s, token))
    except service.InvitationError as exc:
        withdrawn = isinstance(exc.detail, dict) and exc.detail.get("reason") == "withdrawn"
        title = "This link was withdrawn" if withdrawn else "This link is not valid"
        raise PageError(as_sentence(exc.message), title=title) from exc
    # Redirect so that the token leaves the address bar and the browser history.
    response = RedirectResponse("/read", status_code=303)
    set_reader_cookie(response, request.app.state.settings, session_token)
    response.headers["cache-control"] = "no-store"
    return response


@router.get("/read", response_class=HTMLResponse)
def welcome(request: Request, session: SessionDep, reader: ReaderPage) -> Response:
    me = service.me(session, reader)
    return templates.TemplateResponse(request, "reader/welcome.html", {"me": me})


@router.get("/read/cases/{position}", response_class=HTMLResponse)
def case_page(
    position: PagePosition, request: Request, session: SessionDep, reader: ReaderPage
) -> Response:
    me = service.me(session, reader)
    if position > me.progress.total or not me.accepting_answers or me.profile_needed:
        # the welcome page says why a draft or closed study cannot be read, or asks the profile
        return RedirectResponse("/read", status_code=303)
    presets = [p.model_dump(exclude_none=True) for p in me.window_presets]
    context = {"me": me, "position": position, "questions": service.QUESTIONS, "presets": presets}
    return templates.TemplateResponse(request, "reader/case.html", context)


@router.get("/read/done", response_class=HTMLResponse)
def done_page(request: Request, session: SessionDep, reader: ReaderPage) -> Response:
    me = service.me(session, reader)
    cases = service.list_cases(session, reader).cases
    context = {
        "me": me,
        "flagged": [c.position for c in cases if c.flagged],
        "unfinished": [c.position for c in cases if not c.complete],
    }
    return templates.TemplateResponse(request, "reader/done.html", context)
