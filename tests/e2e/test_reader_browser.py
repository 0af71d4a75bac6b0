"""The reader in a real browser: keyboard only, resume after reload, answers through an outage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.auth.models import Role
from backend.reading.models import Answer
from backend.studies import service as studies_service
from backend.studies.models import StudyStatus
from backend.studies.schemas import StudyCreate
from tests.e2e.conftest import LiveServer, screenshot, wait_until
from tests.factories import make_dataset, make_pie_set, make_user


@pytest.fixture
def invitation(session: Session, tmp_path: Path, live_server: LiveServer) -> str:
    ds = make_dataset(session, tmp_path, 120)
    ps = make_pie_set(session, ds, n_pies=50)
    owner = make_user(session, "browser-owner", Role.coordinator)
    study = studies_service.create_study(
        session,
        owner,
        StudyCreate(name="Browser study", pie_set_id=ps.id, planned_readers=1, seed=9),
    )
    studies_service.change_status(session, study, StudyStatus.open)
    enrolled = studies_service.enroll_readers(session, study.id, owner, ["Dr Browser"])
    session.commit()
    return f"{live_server.url}/r/{enrolled[0].token}"


def complete_answers(session: Session) -> int:
    n = (
        session.scalar(
            select(func.count()).select_from(Answer).where(Answer.completed_at.is_not(None))
        )
        or 0
    )
    session.rollback()
    return n


def answer_with_keys(page: Any, keys: str = "y3e") -> None:
    page.wait_for_selector("#reader[data-ready=true]")
    for key in keys:
        page.keyboard.press(key)
    page.wait_for_selector("#save-state[data-state=saved]")


@pytest.mark.slow
def test_reader_answers_all_forty_cases_with_the_keyboard(
    page: Any, invitation: str, session: Session
) -> None:
    page.goto(invitation)
    assert "Welcome, Dr Browser" in page.inner_text("h1")
    screenshot(page, "reader-welcome")
    # autofocus lands at the next rendering step: press Enter once the focus ring is on Start
    wait_until(page, "document.activeElement && document.activeElement.id === 'start'")
    page.keyboard.press("Enter")
    page.wait_for_url("**/read/cases/1")
    for position in range(1, 41):
        assert page.url.endswith(f"/read/cases/{position}")
        answer_with_keys(page, "y3e" if position % 2 else "n4w")
        if position == 1:
            wait_until(page, "document.getElementById('image').width > 0")
            screenshot(page, "reader-case")
            page.keyboard.press("?")
            assert page.is_visible("#help")
            screenshot(page, "reader-case-help")
            page.keyboard.press("?")
        assert page.inner_text("#progress-text") == f"{position} / 40"
        page.keyboard.press("Enter")
        page.wait_for_url("**/read/done" if position == 40 else f"**/read/cases/{position + 1}")
    assert "All 40 cases are answered and saved" in page.inner_text("#complete")
    screenshot(page, "reader-done")
    assert complete_answers(session) == 40


def test_reload_midway_resumes_with_answers_intact(
    page: Any, invitation: str, session: Session
) -> None:
    page.goto(invitation)
    page.click("#start")
    for position in (1, 2, 3):
        answer_with_keys(page, "n" + str(position + 1) + "r")
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/read/cases/{position + 1}")
    page.reload()
    page.goto(page.url.split("/read/")[0] + "/read")
    assert "Resume at case 4" in page.inner_text("#start")
    page.click("#start")
    page.wait_for_url("**/read/cases/4")
    page.goto(page.url.replace("/cases/4", "/cases/2"))
    page.wait_for_selector("#reader[data-ready=true]")
    assert page.is_checked("input[name=agree][value=no]")
    assert page.is_checked("input[name=quality][value='3']")
    assert page.is_checked("input[name=difficulty][value='4']")
    assert complete_answers(session) == 3


def test_answers_given_while_the_server_is_down_arrive_after_restart(
    page: Any, invitation: str, live_server: LiveServer, session: Session
) -> None:
    page.goto(invitation)
    page.click("#start")
    page.wait_for_selector("#reader[data-ready=true]")
    key = page.get_attribute("#reader", "data-reader-key")
    queued = f"JSON.parse(localStorage.getItem('piestudy.answerQueue.{key}') || '[]').length"
    live_server.stop()
    for k in "y5t":
        page.keyboard.press(k)
    page.wait_for_selector("#save-state[data-state=offline]")
    assert "waiting to be sent" in page.inner_text("#save-state")
    screenshot(page, "reader-offline")
    assert page.evaluate(queued) >= 1
    assert complete_answers(session) == 0
    live_server.start()  # same port, same database
    page.wait_for_selector("#save-state[data-state=saved]", timeout=30_000)
    assert page.evaluate(queued) == 0
    assert complete_answers(session) == 1
