"""Renderings made ahead: when a study opens or gains readers, and by `piestudy study render`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from backend.cli import app as cli
from backend.config import Settings
from backend.derivatives import DISPLAY, FULL, derivative_path
from backend.reading import repository
from tests.backend.conftest import StudySetup


def sources(app: FastAPI, study_id: int) -> list[Path]:
    with app.state.read_sessionmaker() as session:
        return [p for p, _ in repository.study_sources(session, study_id)]


@pytest.fixture
def prerendering(settings: Settings) -> Settings:
    settings.prerender = True
    return settings


def test_opening_a_study_makes_every_rendering_ahead(
    prerendering: Settings, make_study: Callable[..., StudySetup], app: FastAPI
) -> None:
    s = make_study(readers=2, cases_per_reader=6, overlap_cases=2)
    made = sources(app, s.study_id)
    assert len(made) == 14
    media = prerendering.resolved_media_dir
    for source in made:
        for kind in (DISPLAY, FULL):
            assert derivative_path(source, kind, media).is_file(), (source, kind)


def test_the_cli_renders_a_study_and_says_what_it_made(
    env_settings: Settings, make_study: Callable[..., StudySetup], app: FastAPI
) -> None:
    s = make_study(readers=1, cases_per_reader=4)  # prerender is off in tests
    media = env_settings.resolved_media_dir
    made = sources(app, s.study_id)
    assert not any(derivative_path(p, DISPLAY, media).is_file() for p in made)
    r = CliRunner().invoke(cli, ["study", "render", "--study", str(s.study_id)])
    assert r.exit_code == 0, r.output
    assert "4 images, 8 renderings made, 0 failed" in r.output
    assert all(derivative_path(p, FULL, media).is_file() for p in made)
    again = CliRunner().invoke(cli, ["study", "render", "--study", str(s.study_id)])
    assert "4 images, 0 renderings made" in again.output
    made[0].write_bytes(b"not an image any more")
    broken = CliRunner().invoke(cli, ["study", "render", "--study", str(s.study_id)])
    assert broken.exit_code == 2 and "1 failed" in broken.output
    assert CliRunner().invoke(cli, ["study", "render", "--study", "999"]).exit_code == 2
