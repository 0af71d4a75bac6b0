"""`piestudy user ...`: coordinator, researcher and admin accounts."""

from __future__ import annotations

import getpass
import os
from typing import Annotated

import typer
from rich.table import Table

from backend.auth import service as auth_service
from backend.auth.models import Role
from backend.auth.schemas import UserCreate
from backend.cli.common import console, fail, session_scope

app = typer.Typer(help="coordinator, researcher and admin accounts", no_args_is_help=True)


@app.command("create")
def create(
    username: str,
    role: Annotated[Role, typer.Option(help="admin, coordinator or researcher")] = Role.coordinator,
    display_name: Annotated[str, typer.Option()] = "",
    password_env: Annotated[
        str | None,
        typer.Option(help="read the password from this environment variable instead of a prompt"),
    ] = None,
) -> None:
    """Create an account (the password is prompted for, never passed on the command line)."""
    if password_env:
        password = os.environ.get(password_env, "")
        if not password:
            raise fail(f"environment variable {password_env} is empty or unset")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise fail("the passwords differ")
    try:
        data = UserCreate(
            username=username, password=password, role=role, display_name=display_name
        )
    except ValueError as exc:
        raise fail(str(exc)) from exc
    with session_scope() as session:
        user = auth_service.create_user(session, data)
        console.print(f"created {user.role.value} {user.username!r} (id {user.id})")


@app.command("list")
def list_() -> None:
    """List accounts."""
    with session_scope() as session:
        table = Table("id", "username", "role", "active")
        for u in auth_service.list_users(session):
            table.add_row(str(u.id), u.username, u.role.value, "yes" if u.is_active else "no")
        console.print(table)
