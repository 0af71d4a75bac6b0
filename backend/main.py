"""The FastAPI application: routers, error handlers, health."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

import backend.models  # noqa: F401  (registers every table)
from backend.auth.pages import router as auth_pages
from backend.auth.router import router as auth_router
from backend.config import Settings, get_settings
from backend.datasets.router import router as datasets_router
from backend.db import READ_SLOTS, make_engine, make_sessionmaker, ping, read_only, request_slots
from backend.errors import describe_errors, install_error_handlers
from backend.piesets.pages import router as piesets_pages
from backend.piesets.router import router as piesets_router
from backend.reading.pages import router as reading_pages
from backend.reading.router import router as reading_router
from backend.runs.pages import router as runs_pages
from backend.runs.router import router as runs_router
from backend.security import EdgeSecurity
from backend.stats.router import router as stats_router
from backend.studies.pages import router as studies_pages
from backend.studies.router import router as studies_router
from backend.templating import STATIC_DIR, install_page_handlers


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # What start-up made lives as long as the process: take it out of the collector's sweeps,
        # or every full collection walks it (a pause of tens of milliseconds mid-request).
        gc.collect()
        gc.freeze()
        yield
        engine.dispose()

    app = FastAPI(
        title="piestudy",
        summary="Pruning-identified exemplars in chest X-ray classifiers, and their reader study",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    read_engine = read_only(engine)
    app.state.read_engine = read_engine
    app.state.read_sessionmaker = make_sessionmaker(read_engine)
    app.state.db_slots = anyio.Semaphore(
        request_slots(engine, settings.db_slots, settings.server_workers)
    )
    app.state.read_slots = anyio.Semaphore(READ_SLOTS)
    describe_errors(app)
    install_error_handlers(app)
    install_page_handlers(app)
    if settings.allowed_hosts != ["*"]:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)

    @app.get("/api/health", tags=["health"])
    def health(request: Request) -> JSONResponse:
        try:
            ping(read_engine)
        except Exception as exc:  # any database failure means "not healthy"
            return JSONResponse(
                {"status": "unavailable", "database": f"error: {type(exc).__name__}"},
                status_code=503,
            )
        return JSONResponse({"status": "ok", "database": "ok"})

    for router in (
        auth_router,
        datasets_router,
        piesets_router,
        studies_router,
        reading_router,
        stats_router,
        runs_router,
        auth_pages,
        reading_pages,
        studies_pages,
        piesets_pages,
        runs_pages,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(
        EdgeSecurity, public_url=settings.public_url, production=settings.env == "production",
        max_body=settings.max_request_mb * 1024 * 1024,
    )  # fmt: skip
    return app
