"""What every `piestudy` command prints with, and how it stops on bad input."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print `error: message` on stderr and give the exit to raise (status 2: bad input)."""
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)  # paths unbroken
    return typer.Exit(code=2)
