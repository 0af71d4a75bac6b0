"""`piestudy serve`, `piestudy worker` and `piestudy demo`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Annotated

import typer

from backend.cli.common import console, fail
from backend.config import get_settings
from backend.db import make_engine, make_sessionmaker
from backend.runs.models import MAX_ATTEMPTS
from ml.executors import ExecutorName


def serve(
    host: Annotated[str | None, typer.Option(help="interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port (PIESTUDY_PORT)")] = None,
    workers: Annotated[
        int | None, typer.Option(help="server processes (PIESTUDY_WORKERS)", min=1, max=32)
    ] = None,
) -> None:
    """Serve the API and the web interface."""
    import uvicorn

    settings = get_settings()
    workers = workers or settings.server_workers
    # each process shares out the database slots by the number of processes (backend.db)
    os.environ["PIESTUDY_WORKERS"] = str(workers)
    uvicorn.run(
        "backend.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def worker_command() -> list[str]:
    """`piestudy worker` in this interpreter: what the demo starts beside its server."""
    return [sys.executable, "-m", "backend.cli", "worker"]


def demo(
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="serve once built")
    ] = True,
    with_worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="run a worker beside the server")
    ] = True,
) -> None:
    """Build the demo (synthetic data, a trained and pruned population, its PIEs, a 6-reader
    study) unless it exists, print the coordinator's login and the reader links, and serve."""
    from backend import migrate
    from backend.demo import build_demo

    settings = get_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    migrate.upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        result = build_demo(make_sessionmaker(engine), settings, typer.echo)
    finally:
        engine.dispose()
    console.print(f"\n[bold]piestudy demo[/bold] ready in {time.perf_counter() - started:.0f} s")
    # plain echo: links and passwords must never be wrapped
    typer.echo(f"  sign in at {settings.base_url}/login")
    typer.echo(f"    coordinator: {result.coordinator}   password: {result.password}")
    typer.echo(f"    researcher:  researcher    password: {result.password}")
    typer.echo("  reader links (one per reader; each opens that reader's cases):")
    for name, url in result.links:
        typer.echo(f"    {name}: {url}")
    if serve_after:
        # a worker beside the server, so that a run started from the research page runs
        runs = subprocess.Popen(worker_command()) if with_worker else None  # noqa: S603
        console.print(
            f"\nserving on {settings.base_url}"
            + (f" with a worker for runs (pid {runs.pid})" if runs else "")
            + " (Ctrl-C stops)\n"
        )
        try:
            serve(host=None, port=None, workers=None)
        finally:
            if runs is not None:
                runs.terminate()  # it hands a run it was on back to the queue
                runs.wait(timeout=30)


def worker(
    executor: Annotated[
        ExecutorName, typer.Option(help="local, or ray (training and inference on a Ray cluster)")
    ] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster address; unset: a local Ray instance")
    ] = None,
    lease: Annotated[
        float, typer.Option(help="seconds of silence after which a run is re-queued")
    ] = 30.0,
    heartbeat: Annotated[float, typer.Option(help="seconds between heartbeats")] = 2.0,
    poll: Annotated[float, typer.Option(help="seconds between looks at an empty queue")] = 1.0,
    max_attempts: Annotated[
        int, typer.Option(help="attempts of a run before one whose worker fell silent fails")
    ] = MAX_ATTEMPTS,
    drain: Annotated[bool, typer.Option(help="exit once no run is queued")] = False,
) -> None:
    """Execute queued runs, one at a time, until stopped."""
    from backend.runs.worker import Worker

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        w = Worker(
            make_sessionmaker(engine), settings, executor=executor, ray_address=ray_address,
            lease_s=lease, heartbeat_s=heartbeat, poll_s=poll, max_attempts=max_attempts,
            say=typer.echo,
        )  # fmt: skip
    except ValueError as exc:
        raise fail(str(exc)) from exc
    w.install_signal_handlers()
    console.print(f"worker {w.id} ({executor}) waiting for runs")
    try:
        done = w.serve(drain=drain)
    finally:
        engine.dispose()
    console.print(f"worker {w.id}: {done} run(s) executed")
