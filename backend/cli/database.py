"""`piestudy db ...`: the schema, backups and restores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from backend.cli.common import console, fail, safe_url
from backend.config import get_settings

app = typer.Typer(help="database schema, backups and restores", no_args_is_help=True)


@app.command("upgrade")
def upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Create or migrate the schema (to the newest revision by default)."""
    from backend import migrate

    url = get_settings().resolved_database_url
    migrate.upgrade(url, revision)
    console.print(f"database at {safe_url(url)} is at revision {revision}")


@app.command("backup")
def backup(
    out: Annotated[Path, typer.Argument(help="backup file to create (.sqlite or .dump)")],
) -> None:
    """A consistent copy of the whole database, taken while it runs."""
    from backend.backup import BackupError
    from backend.backup import backup as take_backup

    try:
        info = take_backup(get_settings().resolved_database_url, out)
    except BackupError as exc:
        raise fail(str(exc)) from exc
    console.print(f"backed up the {info.kind} database to {info.path} ({info.size:,} bytes)")


@app.command("restore")
def restore(
    src: Annotated[Path, typer.Argument(help="a file from `piestudy db backup`")],
    yes: Annotated[
        bool, typer.Option("--yes", help="confirm: the database's contents are replaced")
    ] = False,
) -> None:
    """Replace the database's contents with a backup's (all or nothing), then migrate."""
    from backend.backup import BackupError
    from backend.backup import restore as restore_backup

    url = get_settings().resolved_database_url
    if not yes:
        raise fail(f"this replaces everything in {safe_url(url)}; add --yes to go on")
    try:
        restore_backup(url, src)
    except BackupError as exc:
        raise fail(str(exc)) from exc
    console.print(f"restored {safe_url(url)} from {src}")


@app.command("downgrade")
def downgrade(revision: Annotated[str, typer.Argument(help="target, e.g. -1 or base")]) -> None:
    """Undo migrations down to REVISION."""
    from backend import migrate

    migrate.downgrade(get_settings().resolved_database_url, revision)
    console.print(f"downgraded to {revision}")
