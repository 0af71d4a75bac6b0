"""Practice cases and the reader profile in a real browser: the coordinator sets both up in the
new-study form; the reader answers the profile once, then reads the practice cases first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth.models import Role
from backend.studies.models import Reader, Study
from tests.e2e.conftest import LiveServer, screenshot, sign_in, wait_until
from tests.factories import make_dataset, make_pie_set, make_user


def test_coordinator_sets_up_practice_and_profile_and_the_reader_meets_them(
    page: Any, live_server: LiveServer, session: Session, tmp_path: Path
) -> None:
    ds = make_dataset(session, tmp_path, 80)
    make_pie_set(session, ds, n_pies=30, name="practice-set")
    make_user(session, "coco", Role.coordinator)
    session.commit()

    page.goto(f"{live_server.url}/login")
    sign_in(page, "coco", "studies")
    page.fill("input[name=name]", "Practice study")
    page.fill("input[name=cases_per_reader]", "6")
    page.fill("input[name=planned_readers]", "2")
    page.fill("input[name=practice_cases]", "2")
    wait_until(page, "document.getElementById('preview').textContent.includes('2 practice cases')")
    page.click("#add-profile-field")
    first = "#profile-rows li:nth-child(1)"
    page.keyboard.type("Years of experience")  # the new question's text has the focus
    page.fill(f"{first} [data-part=minimum]", "0")
    page.fill(f"{first} [data-part=maximum]", "60")
    page.click("#add-profile-field")
    second = "#profile-rows li:nth-child(2)"
    page.fill(f"{second} [data-part=label]", "Specialty")
    page.select_option(f"{second} [data-part=kind]", "choice")
    assert page.is_visible(f"{second} [data-part=choices]")
    assert not page.is_visible(f"{second} [data-part=minimum]")
    page.fill(f"{second} [data-part=choices]", "Thoracic, General, Resident")
    screenshot(page, "coordinator-profile-questions")
    page.click("#create-study button[type=submit]")
    page.wait_for_url("**/studies/*")
    assert "2 practice cases first" in page.inner_text(".page")
    assert "profile_years_of_experience" in page.inner_text("#profile-questions")
    study = session.scalars(select(Study).where(Study.name == "Practice study")).one()
    assert study.practice_cases == 2
    assert [f["key"] for f in study.profile_fields] == ["years_of_experience", "specialty"]
    assert study.profile_fields[1]["choices"] == ["Thoracic", "General", "Resident"]
    session.rollback()
    page.fill("textarea[name=names]", "Dr P")
    page.click("#enroll button[type=submit]")
    page.wait_for_selector("#links input")
    link = page.input_value("#links input")
    page.click("[data-status=open]")
    page.wait_for_selector("#status:text('open')")

    # tall enough for the whole welcome page: a full-page screenshot then needs no resize
    reader = page.context.browser.new_page(viewport={"width": 1280, "height": 1100})
    reader.goto(link)
    assert "The first 2 cases are practice" in reader.inner_text("#practice-note")
    assert reader.query_selector("#start") is None  # the profile comes first
    reader.click("#profile-save")
    assert "Years of experience" in reader.inner_text("#profile-message")
    reader.fill("input[name=years_of_experience]", "75")
    reader.click("#profile-save")
    assert "Years of experience" in reader.inner_text("#profile-message")
    reader.fill("input[name=years_of_experience]", "12")
    reader.select_option("select[name=specialty]", "Resident")
    screenshot(reader, "reader-profile")
    reader.click("#profile-save")
    reader.wait_for_selector("#reader[data-ready=true][data-position='1'][data-image=shown]")
    assert reader.inner_text("#case-title") == "Practice case 1"
    assert reader.is_visible("#practice-badge")
    for key in ("y3e", "n2w"):
        for k in key:
            reader.keyboard.press(k)
        reader.wait_for_selector("#save-state[data-state=saved]")
        reader.keyboard.press("Enter")
        reader.wait_for_selector("#reader[data-ready=true][data-image=shown]")
    assert reader.get_attribute("#reader", "data-position") == "3"
    assert reader.inner_text("#case-title") == "Case 3"
    assert not reader.is_visible("#practice-badge")
    screenshot(reader, "reader-after-practice")
    reader.keyboard.press("l")
    reader.wait_for_selector("#case-list[open] [data-case]")
    items = reader.locator("#case-list-items [data-case]").all_inner_texts()
    assert items[:3] == ["Practice case 1: done", "Practice case 2: done", "Case 3: not done"]
    reader.keyboard.press("Escape")

    # asked once: the welcome page now offers to resume, and the profile is stored
    reader.goto(link.split("/r/")[0] + "/read")
    assert reader.query_selector("#profile") is None
    assert "Resume at case 3" in reader.inner_text("#start")
    row = session.scalars(select(Reader).where(Reader.display_name == "Dr P")).one()
    assert row.profile == {"years_of_experience": 12, "specialty": "Resident"}
    session.rollback()
    reader.close()
