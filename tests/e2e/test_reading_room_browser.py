"""The reading room in a real browser: a shared workstation, a dropped network, keyboard-only
reading, what the save status says, flags and the case list, and two tabs on one case."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth.models import Role
from backend.reading.models import Answer
from backend.studies import service as studies_service
from backend.studies.models import Assignment, Reader, StudyStatus
from backend.studies.models import Study as StudyModel
from backend.studies.schemas import StudyCreate
from tests.e2e.conftest import LiveServer, screenshot, wait_until
from tests.factories import make_dataset, make_pie_set, make_user


class Study:
    def __init__(self, session: Session, url: str, study_id: int, links: dict[str, str]):
        self.session, self.url, self.id, self.links = session, url, study_id, links

    def answers(self) -> dict[tuple[str, int], dict[str, Any]]:
        """What the database holds: (reader, position) -> the answer's fields."""
        rows = self.session.execute(
            select(Reader.display_name, Assignment.position, Answer)
            .join(Assignment, Assignment.reader_id == Reader.id)
            .join(Answer, Answer.assignment_id == Assignment.id)
            .where(Reader.study_id == self.id)
        ).all()
        out = {
            (name, pos): {k: getattr(a, k) for k in ("agree", "quality", "difficulty", "flagged")}
            | {"comment": a.comment}
            for name, pos, a in rows
        }
        self.session.rollback()
        return out

    def set_status(self, status: StudyStatus) -> None:
        study = self.session.get(StudyModel, self.id)
        assert study is not None
        studies_service.change_status(self.session, study, status)
        self.session.commit()

    def new_link(self, name: str) -> str:
        reader = self.session.scalars(
            select(Reader).where(Reader.study_id == self.id, Reader.display_name == name)
        ).one()
        study = self.session.get(StudyModel, self.id)
        assert study is not None
        token = studies_service.reissue_link(self.session, study, reader.id).token
        self.session.commit()
        return f"{self.url}/r/{token}"


@pytest.fixture
def make_reading_study(
    session: Session, tmp_path: Path, live_server: LiveServer
) -> Callable[..., Study]:
    def build(
        names: tuple[str, ...] = ("Dr A",), status: StudyStatus = StudyStatus.open, cases: int = 8
    ) -> Study:
        ds = make_dataset(session, tmp_path, 60)
        ps = make_pie_set(session, ds, n_pies=25)
        owner = make_user(session, "room-owner", Role.coordinator)
        design = StudyCreate(
            name="Reading room", pie_set_id=ps.id, planned_readers=len(names), seed=4,
            cases_per_reader=cases,
        )  # fmt: skip
        study = studies_service.create_study(session, owner, design)
        enrolled = studies_service.enroll_readers(session, study.id, owner, list(names))
        if status != StudyStatus.draft:
            studies_service.change_status(session, study, StudyStatus.open)
        if status == StudyStatus.closed:
            studies_service.change_status(session, study, StudyStatus.closed)
        session.commit()
        links = {e.reader.display_name: f"{live_server.url}/r/{e.token}" for e in enrolled}
        return Study(session, live_server.url, study.id, links)

    return build


def open_case(page: Any, link: str, position: int = 1) -> None:
    page.goto(link)
    page.goto(page.url.split("/read")[0] + f"/read/cases/{position}")
    page.wait_for_selector("#reader[data-ready=true][data-image=shown]")


def state(page: Any) -> str:
    return str(page.get_attribute("#save-state", "data-state"))


def checked(page: Any) -> dict[str, str | None]:
    return {
        name: page.evaluate(f"document.querySelector('input[name={name}]:checked')?.value ?? null")
        for name in ("agree", "quality", "difficulty")
    }


def test_on_a_shared_browser_answers_stay_with_their_reader(
    browser: Any, make_reading_study: Callable[..., Study]
) -> None:
    study = make_reading_study(("Dr A", "Dr B"))
    context = browser.new_context()  # one browser profile, as on a shared workstation
    a = context.new_page()
    open_case(a, study.links["Dr A"])
    wait_until(
        a, "document.getElementById('reader').dataset.prefetched === '8'", 30_000
    )  # paced: about 8 s for 8 cases
    context.set_offline(True)
    for k in "n2w":
        a.keyboard.press(k)
    a.wait_for_selector("#save-state[data-state=offline]")
    a.close()  # A leaves with three answers waiting in the browser
    context.set_offline(False)

    b = context.new_page()
    open_case(b, study.links["Dr B"])
    assert checked(b) == {"agree": None, "quality": None, "difficulty": None}
    assert state(b) == "unanswered"
    for k in "y4e":
        b.keyboard.press(k)
    b.wait_for_selector("#save-state[data-state=saved]")
    b.click("#next")
    b.wait_for_selector("#reader[data-ready=true][data-position='2']")
    assert checked(b) == {"agree": None, "quality": None, "difficulty": None}
    # B's pages sent B's answers only, and A's are still waiting, as A's
    assert study.answers() == {
        ("Dr B", 1): {
            "agree": True,
            "quality": 4,
            "difficulty": 3,
            "flagged": False,
            "comment": None,
        }
    }
    key_a = b.evaluate(
        "Object.keys(localStorage).filter(k => k.startsWith('piestudy.answerQueue.'))"
        ".map(k => [k, JSON.parse(localStorage.getItem(k)).length])"
    )
    assert sorted(n for _, n in key_a) == [0, 3]
    b.close()

    # A comes back, through a new link, in the same browser: A's answers arrive as A's
    back = context.new_page()
    back.goto(study.new_link("Dr A"))
    wait_until(back, "document.getElementById('progress-text')?.textContent.includes('1 / 8')")
    assert (
        study.answers()[("Dr A", 1)] | {"agree": False, "quality": 2, "difficulty": 2}
        == (study.answers()[("Dr A", 1)])
    )
    assert set(study.answers()) == {("Dr A", 1), ("Dr B", 1)}
    context.close()


def test_a_tab_left_open_for_another_reader_sends_nothing_as_the_new_one(
    browser: Any, make_reading_study: Callable[..., Study]
) -> None:
    study = make_reading_study(("Dr A", "Dr B"))
    context = browser.new_context()
    a = context.new_page()
    open_case(a, study.links["Dr A"])
    b = context.new_page()
    open_case(b, study.links["Dr B"])  # the browser's session is now B's
    a.bring_to_front()
    for k in "y1q":
        a.keyboard.press(k)
    a.wait_for_selector("#save-state[data-state=not-saved]")
    assert "another reader" in a.inner_text("#save-state")
    assert "kept in this browser" in a.inner_text("#save-state")
    screenshot(a, "reader-other-reader")
    assert study.answers() == {}
    context.close()


def test_the_keyboard_reaches_everything_and_arrows_change_no_answer(
    page: Any, make_reading_study: Callable[..., Study]
) -> None:
    study = make_reading_study()
    open_case(page, study.links["Dr A"], 2)
    page.focus("input[name=quality][value='3']")
    page.keyboard.press("Space")
    wait_until(page, "document.getElementById('save-state').dataset.state === 'saved'")
    for arrow in ("ArrowRight", "ArrowDown", "ArrowLeft", "ArrowUp"):
        page.keyboard.press(arrow)
        assert checked(page)["quality"] == "3", arrow
        assert page.url.endswith("/read/cases/2"), arrow
    # the answer keys work on a focused radio and on a focused button
    page.keyboard.press("y")
    page.focus("#zoom-in")
    page.keyboard.press("r")
    assert checked(page) == {"agree": "yes", "quality": "3", "difficulty": "4"}
    # Enter on a focused button does that button's action
    page.focus("#prev")
    page.keyboard.press("Enter")
    page.wait_for_selector("#reader[data-ready=true][data-position='1']")
    assert page.url.endswith("/read/cases/1")
    # Enter elsewhere goes on only once all three are answered
    page.focus("#stage")
    page.keyboard.press("Enter")
    assert "Answer all three questions first" in page.inner_text("#message")
    # the help overlay: ? opens it, it lists the keys, Esc closes it
    page.keyboard.press("?")
    assert page.evaluate("document.getElementById('help').open")
    help_text = page.inner_text("#help")
    for key in ("Y / N", "1 \u2013 5", "Q W E R T", "Enter", "← →", "F", "L", "Esc"):
        assert key in help_text
    page.keyboard.press("y")  # no answer is given behind the overlay
    assert checked(page)["agree"] is None
    screenshot(page, "reader-help")
    page.keyboard.press("Escape")
    assert not page.evaluate("document.getElementById('help').open")
    # the comment box takes letters as text; Esc leaves it, and the keys work again
    page.keyboard.press("c")
    page.keyboard.type("nyq")
    page.keyboard.press("Escape")
    page.keyboard.press("n")
    assert page.input_value("#comment") == "nyq" and checked(page)["agree"] == "no"


def test_each_save_state_is_shown(
    page: Any, make_reading_study: Callable[..., Study], live_server: LiveServer
) -> None:
    study = make_reading_study()
    open_case(page, study.links["Dr A"])
    assert state(page) == "unanswered" and page.inner_text("#save-state") == "Not answered"
    held: list[Any] = []

    def hold_the_first(route: Any) -> None:
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route("**/answer", hold_the_first)
    page.keyboard.press("y")
    page.wait_for_selector("#save-state[data-state=saving]")
    assert page.inner_text("#save-state") == "Saving…"
    # the page shows "saving" as the answer is given, before its request leaves: the route
    # handler sees it a moment later (Playwright delivers it while the test waits)
    for _ in range(500):
        if held:
            break
        page.wait_for_timeout(20)
    assert held, "the save never reached the network"
    held[0].continue_()
    page.wait_for_selector("#save-state[data-state=saved]")
    assert page.inner_text("#save-state") == "Saved"
    # offline, with the number of answers waiting
    page.context.set_offline(True)
    page.keyboard.press("2")
    page.keyboard.press("w")
    page.wait_for_selector("#save-state[data-state=offline]")
    wait_until(page, "document.getElementById('save-state').dataset.waiting === '2'")
    assert page.inner_text("#save-state") == "Offline: 2 answers waiting to be sent"
    page.context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_selector("#save-state[data-state=saved]")
    # a refused answer is shown as not saved, with the reason
    study.set_status(StudyStatus.closed)
    page.keyboard.press("5")
    page.wait_for_selector("#save-state[data-state=not-saved]")
    assert "Not saved: the study is closed" in page.inner_text("#save-state")
    screenshot(page, "reader-not-saved")
    assert study.answers()[("Dr A", 1)]["quality"] == 2


def test_five_cases_read_offline_arrive_once_back_online(
    page: Any, make_reading_study: Callable[..., Study]
) -> None:
    study = make_reading_study()
    open_case(page, study.links["Dr A"])
    wait_until(page, "document.getElementById('reader').dataset.prefetched === '8'", 30_000)
    page.context.set_offline(True)
    for position in range(1, 6):
        page.wait_for_selector(f"#reader[data-ready=true][data-position='{position}']")
        page.wait_for_selector("#reader[data-image=shown]")
        assert page.evaluate("document.getElementById('image').width") > 0
        for k in ("y", str(position), "qwert"[position - 1]):
            page.keyboard.press(k)
        page.keyboard.press("Enter")
    page.wait_for_selector("#reader[data-ready=true][data-position='6']")
    assert page.inner_text("#save-state") == "Offline: 15 answers waiting to be sent"
    assert study.answers() == {}
    screenshot(page, "reader-offline-reading")
    page.context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    wait_until(page, "document.getElementById('save-state').dataset.waiting === '0'", 30_000)
    got = study.answers()
    assert {p: (a["agree"], a["quality"], a["difficulty"]) for (_, p), a in got.items()} == {
        p: (True, p, p) for p in range(1, 6)
    }


def test_a_failed_image_says_so_and_the_case_waits_for_it(
    page: Any, make_reading_study: Callable[..., Study]
) -> None:
    study = make_reading_study()
    page.route("**/cases/3/image*", lambda route: route.fulfill(status=503, body="down"))
    page.goto(study.links["Dr A"])
    page.goto(page.url.split("/read")[0] + "/read/cases/3")
    page.wait_for_selector("#reader[data-image=failed]")
    assert page.is_visible("#image-error")
    assert "could not be loaded" in page.inner_text("#image-error")
    for k in "y3e":
        page.keyboard.press(k)
    assert checked(page) == {"agree": None, "quality": None, "difficulty": None}
    assert "graded once it is" in page.inner_text("#message")
    assert page.is_disabled("#next")
    screenshot(page, "reader-image-failed")
    page.unroute("**/cases/3/image*")
    page.click("#image-retry")
    page.wait_for_selector("#reader[data-image=shown]")
    for k in "y3e":
        page.keyboard.press(k)
    page.wait_for_selector("#save-state[data-state=saved]")
    assert study.answers()[("Dr A", 3)]["quality"] == 3


def test_flags_comments_the_case_list_and_the_end_page(
    page: Any, make_reading_study: Callable[..., Study]
) -> None:
    study = make_reading_study(cases=4)
    open_case(page, study.links["Dr A"])
    for k in "y3e":
        page.keyboard.press(k)
    page.keyboard.press("f")
    page.fill("#comment", "possible rib fracture")
    page.keyboard.press("Tab")  # leaving the box saves the comment
    page.wait_for_selector("#save-state[data-state=saved]")
    page.focus("#stage")  # (Enter on the focused "All cases" button would open the list)
    page.keyboard.press("Enter")
    page.wait_for_selector("#reader[data-ready=true][data-position='2']")
    page.click("#flag")  # flagged, not answered
    page.wait_for_selector("#save-state[data-state=saved]")
    page.keyboard.press("l")
    page.wait_for_selector("#case-list[open] [data-case='4']")
    items = page.inner_text("#case-list-items")
    assert "Case 1: done, flagged" in items and "Case 2: not done, flagged" in items
    assert "Case 3: not done" in items and "1 of 4 done, 2 flagged" in page.inner_text("#case-list")
    screenshot(page, "reader-case-list")
    page.click("[data-case='4']")
    page.wait_for_selector("#reader[data-ready=true][data-position='4']")
    for k in "n1q":
        page.keyboard.press(k)
    page.wait_for_selector("#save-state[data-state=saved]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/read/done")
    assert page.inner_text("#flagged") == "Case 1\nCase 2"
    assert page.inner_text("#unfinished") == "Case 2\nCase 3"
    got = study.answers()
    assert got[("Dr A", 1)]["flagged"] is True
    assert got[("Dr A", 1)]["comment"] == "possible rib fracture"
    assert got[("Dr A", 2)] == {
        "agree": None, "quality": None, "difficulty": None, "flagged": True, "comment": None
    }  # fmt: skip


def test_two_tabs_on_one_case_keep_the_newer_answer(
    browser: Any, make_reading_study: Callable[..., Study]
) -> None:
    study = make_reading_study()
    laptop = browser.new_context().new_page()
    tablet = browser.new_context().new_page()  # another device, the same reader
    open_case(laptop, study.links["Dr A"])
    laptop.context.set_offline(True)
    laptop.keyboard.press("2")  # given first, while offline
    laptop.wait_for_selector("#save-state[data-state=offline]")
    open_case(tablet, study.links["Dr A"])
    tablet.keyboard.press("4")  # given later, online
    tablet.wait_for_selector("#save-state[data-state=saved]")
    laptop.context.set_offline(False)
    laptop.evaluate("window.dispatchEvent(new Event('online'))")
    laptop.wait_for_selector("#save-state[data-state=saved]")
    assert study.answers()[("Dr A", 1)]["quality"] == 4
    wait_until(laptop, "document.querySelector('input[name=quality]:checked')?.value === '4'")
    assert "newer answer" in laptop.inner_text("#message")
    laptop.context.close()
    tablet.context.close()


@pytest.mark.parametrize("status", [StudyStatus.draft, StudyStatus.closed])
def test_a_study_that_is_not_open_offers_no_start_and_says_why(
    page: Any, make_reading_study: Callable[..., Study], status: StudyStatus
) -> None:
    study = make_reading_study(status=status)
    page.goto(study.links["Dr A"])
    assert page.query_selector("#start") is None
    reason = page.inner_text("#not-open")
    assert ("not opened yet" if status == StudyStatus.draft else "closed") in reason
    page.goto(page.url.split("/read")[0] + "/read/cases/1")
    page.wait_for_url("**/read")
    assert page.query_selector("#start") is None
