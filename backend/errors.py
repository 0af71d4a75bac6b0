"""Application errors and their JSON form: {"error": message, "detail": ...}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.templating import error_page, is_page


class AppError(Exception):
    status_code = 400

    def __init__(self, message: str, *, detail: Any = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code


class NotFoundError(AppError):
    status_code = 404


class ConflictError(AppError):
    status_code = 409


class UnauthorizedError(AppError):
    status_code = 401


class ForbiddenError(AppError):
    status_code = 403


class InvalidInputError(AppError):
    status_code = 422


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "form")]
    return ".".join(parts) or "request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        retry = exc.detail.get("retry_after") if isinstance(exc.detail, dict) else None
        return JSONResponse(
            {"error": exc.message, "detail": exc.detail}, status_code=exc.status_code,
            headers={"retry-after": str(retry)} if retry is not None else None,
        )  # fmt: skip

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _out_of_range(_request: Request, exc: Exception) -> JSONResponse:
        # a number too large for the database (an id in a body or query): no row can match it
        return JSONResponse(
            {"error": "a number in the request is out of range", "detail": None}, status_code=422
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {"field": _field_path(e.get("loc", ())), "message": e.get("msg", "invalid")}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"field": "request", "message": "invalid"}
        message = f"invalid {first['field']}: {first['message']}"
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more)"
        if is_page(request):
            return error_page(request, f"This address is not valid: {message}.", 422, "Not valid")
        return JSONResponse({"error": message, "detail": problems}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_page(request) and exc.status_code in (404, 405):
            if exc.status_code == 404:
                return error_page(request, "There is no page at this address.", 404, "Not found")
            return error_page(request, str(exc.detail), 405, "Not allowed")
        return JSONResponse(
            {"error": str(exc.detail), "detail": None},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )


ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "what went wrong, naming the field or item"},
        "detail": {"description": "per-field problems, or more about the error; may be null"},
    },
}


def describe_errors(app: FastAPI) -> None:
    """The OpenAPI schema documents errors as they are sent: {"error", "detail"} (FastAPI's
    default 422 schema describes its own validation body, which this API never sends)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            schemas = schema.get("components", {}).get("schemas", {})
            schemas.pop("ValidationError", None)
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = ERROR_SCHEMA
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
