"""Every control is labelled for screen readers, and the reading screen works at 1280x800 and 4K."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from backend.auth.models import Role
from backend.studies import service as studies_service
from backend.studies.models import StudyStatus
from backend.studies.schemas import StudyCreate
from tests.e2e.conftest import LiveServer, screenshot, sign_in, wait_until
from tests.factories import make_dataset, make_pie_set, make_user

UNNAMED_CONTROLS = """() => [...document.querySelectorAll('a[href], button, input, select, textarea')]
  .filter((el) => el.type !== 'hidden')
  .filter((el) => {
    const name = (el.getAttribute('aria-label') || el.labels?.[0]?.textContent || el.textContent
                  || el.getAttribute('title') || el.getAttribute('alt') || '').trim();
    return !name;
  }).map((el) => el.outerHTML.slice(0, 80))"""


@pytest.fixture
def study_links(session: Session, tmp_path: Path, live_server: LiveServer) -> dict[str, Any]:
    ds = make_dataset(session, tmp_path, 120)
    ps = make_pie_set(session, ds, n_pies=50)
    owner = make_user(session, "access", Role.coordinator)
    study = studies_service.create_study(
        session, owner, StudyCreate(name="Access", pie_set_id=ps.id, planned_readers=1, seed=1)
    )
    studies_service.change_status(session, study, StudyStatus.open)
    token = studies_service.enroll_readers(session, study.id, owner, ["Dr Access"])[0].token
    session.commit()
    return {
        "reader": f"{live_server.url}/r/{token}",
        "study": f"{live_server.url}/studies/{study.id}",
        "base": live_server.url,
    }


@pytest.mark.parametrize("width,height", [(1280, 800), (3840, 2160)])
def test_reading_screen_at_desk_and_4k_sizes(
    browser: Any, study_links: dict[str, Any], width: int, height: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(study_links["reader"])
    page.click("#start")
    page.wait_for_selector("#reader[data-ready=true]")
    wait_until(page, "document.getElementById('image').width > 0")
    stage = page.eval_on_selector("#stage", "e => e.getBoundingClientRect().toJSON()")
    side = page.eval_on_selector("aside", "e => e.getBoundingClientRect().toJSON()")
    assert (
        stage["width"] > 0.55 * width and stage["height"] > 0.8 * height
    )  # the image gets the room
    assert (
        side["right"] <= width + 1 and side["bottom"] <= height + 1
    )  # the questions stay on screen
    image = page.eval_on_selector("#image", "e => e.getBoundingClientRect().toJSON()")
    assert (
        image["height"] > 0.9 * stage["height"] or image["width"] > 0.9 * stage["width"]
    )  # fit to screen
    screenshot(page, f"reader-case-{width}x{height}")
    context.close()


def test_every_control_has_an_accessible_name(page: Any, study_links: dict[str, Any]) -> None:
    page.goto(study_links["reader"])
    assert page.evaluate(UNNAMED_CONTROLS) == []
    page.click("#start")
    page.wait_for_selector("#reader[data-ready=true]")
    assert page.evaluate(UNNAMED_CONTROLS) == []
    page.goto(study_links["base"] + "/login")
    assert page.evaluate(UNNAMED_CONTROLS) == []
    sign_in(page, "access", "studies")
    assert page.evaluate(UNNAMED_CONTROLS) == []
    page.goto(study_links["study"])
    assert page.evaluate(UNNAMED_CONTROLS) == []
    # and the controls are reachable by Tab ("Next" is enabled once the case is answered)
    page.goto(study_links["reader"])
    page.click("#start")
    page.wait_for_selector("#reader[data-ready=true]")
    for key in "y3e":
        page.keyboard.press(key)
    page.wait_for_selector("#save-state[data-state=saved]")
    page.wait_for_selector("#stage[data-full=shown]")  # the window controls work from then
    reached = set()
    for _ in range(50):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.id || document.activeElement.name || ''"))
    assert {
        "zoom-in", "actual", "invert", "preset", "window-center", "window-width", "magnify",
        "measure", "pin", "agree", "quality", "difficulty", "next",
    } <= reached  # fmt: skip


def test_invalid_link_page(page: Any, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/r/not-a-valid-invitation-token")
    assert "This link is not valid" in page.inner_text("h1")
    assert page.evaluate(UNNAMED_CONTROLS) == []
    screenshot(page, "reader-invalid-link")
