"""Jinja2 templates and static files from frontend/."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"
templates = Jinja2Templates(directory=FRONTEND_DIR / "templates")
STATIC_DIR = FRONTEND_DIR / "static"
