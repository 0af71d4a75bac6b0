"""`piestudy db backup` / `db restore`: a restored database holds every answer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from backend.cli import app as cli
from backend.config import Settings
from backend.reading.models import Answer, AnswerRevision
from tests.backend.conftest import StudySetup

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database


def answers(session: Session) -> list[tuple[object, ...]]:
    """Every answer and every revision, as comparable rows."""
    current = session.execute(
        select(Answer.assignment_id, Answer.agree, Answer.quality, Answer.difficulty).order_by(
            Answer.assignment_id
        )
    ).all()
    history = session.execute(
        select(AnswerRevision.client_answer_id, AnswerRevision.quality).order_by(
            AnswerRevision.client_answer_id
        )
    ).all()
    session.rollback()
    return [tuple(r) for r in current] + [tuple(r) for r in history]


def test_a_restored_database_holds_every_answer(
    app: FastAPI, make_study: Callable[..., StudySetup], session: Session,
    env_settings: Settings, tmp_path: Path,
) -> None:  # fmt: skip
    study = make_study(readers=3)
    for r in range(3):
        c = study.reader_client(app, r)
        for position in range(1, 6):
            body = {"answer_id": f"answer-r{r}-p{position}", "agree": position % 2 == 0,
                    "quality": position, "difficulty": 6 - position, "active_seconds": 2.0}  # fmt: skip
            r_ = c.post(f"/api/reader/cases/{position}/answer", json=body)
            assert r_.status_code == 200, r_.text
    before = answers(session)
    assert len(before) == 30  # 15 answers, 15 revisions

    out = tmp_path / "backups" / "piestudy.backup"
    made = CliRunner().invoke(cli, ["db", "backup", str(out)])
    assert made.exit_code == 0, made.output
    assert out.is_file() and "backed up the" in made.output
    again = CliRunner().invoke(cli, ["db", "backup", str(out)])
    assert again.exit_code == 2 and "exists already" in again.output  # never overwritten

    # disaster: the answers are gone
    session.execute(delete(AnswerRevision))
    session.execute(delete(Answer))
    session.commit()
    assert answers(session) == []

    refused = CliRunner().invoke(cli, ["db", "restore", str(out)])
    assert refused.exit_code == 2 and "--yes" in refused.output
    restored = CliRunner().invoke(cli, ["db", "restore", str(out), "--yes"])
    assert restored.exit_code == 0, restored.output
    assert answers(session) == before


def test_restore_refuses_a_file_that_is_not_a_backup(
    env_settings: Settings, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"definitely not a database" * 100)
    result = CliRunner().invoke(cli, ["db", "restore", str(junk), "--yes"])
    assert result.exit_code == 2
    assert "not a SQLite database" in result.output or "not a pg_dump" in result.output
