"""Jinja2 templates, static files, and how pages answer when they cannot show themselves.

Page routes never build error responses by hand: a guard (a dependency) or a service raises
SignInRequired or PageError, and the handlers installed here turn them into the sign-in
redirect or the error page.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"
templates = Jinja2Templates(directory=FRONTEND_DIR / "templates")
STATIC_DIR = FRONTEND_DIR / "static"
SIGN_IN = "/login"


class SignInRequired(Exception):  # noqa: N818 - a page's answer, not a failure
    """The page needs an account of another role, or any account: the sign-in page instead."""


class PageError(Exception):
    """An error page: `title` as its heading, `message` below it."""

    def __init__(self, message: str, *, status_code: int = 404, title: str = "Not found"):
        super().__init__(message)
        self.message, self.status_code, self.title = message, status_code, title


def as_sentence(message: str) -> str:
    """An error message (lower-case, no full stop, as the API sends it) as a page's sentence."""
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def error_page(request: Request, message: str, status_code: int, title: str) -> Response:
    context = {"title": title, "message": message}
    return templates.TemplateResponse(request, "error.html", context, status_code=status_code)


def is_page(request: Request) -> bool:
    """Whether the request is for an HTML page rather than the JSON API or a static file."""
    path = request.url.path
    return not (path.startswith("/api/") or path.startswith("/static/") or path == "/openapi.json")


def install_page_handlers(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def _sign_in(_request: Request, _exc: SignInRequired) -> Response:
        return RedirectResponse(SIGN_IN, status_code=303)

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        return error_page(request, exc.message, exc.status_code, exc.title)
