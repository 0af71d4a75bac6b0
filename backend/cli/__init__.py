"""The `piestudy` command: one module per group of subcommands.

serve, worker, demo (server.py) · db (database.py) · user (accounts.py) · dataset, pieset,
study (data.py) · run (runs.py) · ml (the engine's own commands, ml.cli).
"""

from __future__ import annotations

import typer

from backend.cli import accounts, data, database, runs, server
from ml.cli import app as ml_app

app = typer.Typer(
    help="piestudy: PIE analysis and reader studies for chest X-ray classifiers",
    no_args_is_help=True,
)
app.command()(server.serve)
app.command()(server.worker)
app.command()(server.demo)
app.add_typer(database.app, name="db")
app.add_typer(accounts.app, name="user")
app.add_typer(data.dataset_app, name="dataset")
app.add_typer(data.pieset_app, name="pieset")
app.add_typer(data.study_app, name="study")
app.add_typer(runs.app, name="run")
app.add_typer(ml_app, name="ml")

__all__ = ["app"]
