"""The coordinator in a real browser: sign in, create a study, enroll 6 readers, export, statistics."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.orm import Session

from backend.auth.models import Role
from backend.studies import service as studies_service
from backend.studies.schemas import StudyCreate
from tests.e2e.conftest import ARTIFACTS, LiveServer, screenshot, sign_in, wait_until
from tests.factories import make_dataset, make_pie_set, make_user


def answer_some(url: str, rng: random.Random, cases: int) -> None:
    """A reader answering through the live API, as their browser would."""
    with httpx.Client(base_url=url.split("/r/")[0], follow_redirects=True) as c:
        assert c.get("/r/" + url.split("/r/")[1]).status_code == 200
        for position in range(1, cases + 1):
            body = {"answer_id": f"{rng.getrandbits(64):016x}", "agree": rng.random() < 0.6,
                    "quality": rng.randint(1, 5), "difficulty": rng.randint(1, 5), "active_seconds": 12.0}  # fmt: skip
            assert c.post(f"/api/reader/cases/{position}/answer", json=body).status_code == 200


def test_coordinator_creates_enrolls_exports_and_reads_statistics(
    page: Any, live_server: LiveServer, session: Session, tmp_path: Path
) -> None:
    ds = make_dataset(session, tmp_path, 300)
    make_pie_set(session, ds, n_pies=130, name="k90-p5")
    make_user(session, "coco", Role.coordinator)
    session.commit()

    page.goto(f"{live_server.url}/studies")
    page.wait_for_url("**/login")
    page.fill("input[name=username]", "coco")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    assert "wrong username or password" in page.inner_text("[role=alert]")
    screenshot(page, "coordinator-login")
    sign_in(page, "coco", "studies")
    page.fill("input[name=name]", "Radiologist study")
    page.fill("input[name=seed]", "42")
    wait_until(
        page, "document.getElementById('preview').textContent.includes('20 PIEs + 20 non-PIEs')"
    )
    # the power planner beside the preview: the design's power under the assumed effect, and
    # about the test's level when the effect is set to none
    shown = "document.getElementById('power').textContent"
    wait_until(page, f"/^Power at P < 0.05: \\d+%/.test({shown})")
    assert "van Elteren" in page.inner_text("#power")
    planned = int(page.inner_text("#power").split(": ")[1].split("%")[0])
    page.fill("input[name=shift]", "0")
    wait_until(
        page,
        f"/^Power at P < 0.05: \\d+%/.test({shown}) && {shown} !== {page.inner_text('#power')!r}",
    )
    null = int(page.inner_text("#power").split(": ")[1].split("%")[0])
    assert null <= 12 < planned, (null, planned)
    page.fill("input[name=shift]", "0.4")
    screenshot(page, "coordinator-studies")
    page.click("#create-study button[type=submit]")
    page.wait_for_url("**/studies/*")
    assert "Radiologist study" in page.inner_text("h1") and page.inner_text("#status") == "draft"

    page.fill("textarea[name=names]", "\n".join(f"Dr {c}" for c in "ABCDEF"))
    page.click("#enroll button[type=submit]")
    page.wait_for_selector("#links input")
    links = [page.input_value(f"#links p:nth-child({i}) input") for i in range(1, 7)]
    assert all(link.startswith(f"{live_server.url}/r/") for link in links)
    page.click("[data-status=open]")
    wait_until(page, "document.getElementById('status').textContent === 'open'")

    page.goto(page.url + "?refresh_ms=500")
    assert page.inner_text("#progress tbody tr:first-child td:nth-child(2)") == "0 / 40"
    rng = random.Random(5)
    for link in links:
        answer_some(link, rng, 10)
    # live progress: the table updates without a reload
    wait_until(
        page,
        "[...document.querySelectorAll('#progress tbody tr td:nth-child(2)')].every(td => td.textContent === '10 / 40')",
    )
    page.reload()
    rows = page.query_selector_all("#progress tbody tr")
    assert len(rows) == 6 and all("10 / 40" in r.inner_text() for r in rows)
    stats = page.inner_text("#stats")
    assert "Kruskal-Wallis" in stats and "needs at least" not in stats
    clustered = page.inner_text("#stats-readers")
    assert "Holm" in clustered and "Cliff" in clustered and "points" in clustered
    assert "complete cases only" in page.inner_text("#inclusion")
    assert "Fleiss" in page.inner_text("#agreement")
    assert page.query_selector_all("#fig6 rect") and len(page.query_selector_all("#fig6 rect")) == 6
    screenshot(page, "coordinator-study")

    # the statistics report: print-ready, printed to PDF as a coordinator would ("save as PDF")
    page.click("text=Statistics report")
    page.wait_for_selector("#methods")
    assert page.is_visible("#print") and "Fleiss" in page.inner_text("#agreement")
    assert len(page.query_selector_all("#per-reader tbody")) == 6
    assert len(page.query_selector_all("#fig6 circle.reader-point")) == 6 * 3 * 2
    assert "permutations" in page.inner_text("#methods")
    screenshot(page, "study-report")
    page.emulate_media(media="print")
    assert not page.is_visible("#inclusion-form") and not page.is_visible("text=Back to the study")
    pdf = page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF-") and len(pdf) > 20_000
    (ARTIFACTS / "study-report.pdf").write_bytes(pdf)
    page.emulate_media(media="screen")
    page.click("text=Back to the study")
    page.wait_for_selector("#progress")

    with page.expect_download() as download:
        page.click("text=Export long CSV")
    text = Path(download.value.path()).read_text()
    assert text.count("\n") == 1 + 6 * 40 * 3 and text.startswith("study_id,study,reader_id")

    page.click("[data-status=closed]")
    wait_until(page, "document.getElementById('status').textContent === 'closed'")


def test_reader_management_confirms_and_updates_the_table_in_place(
    page: Any, live_server: LiveServer, session: Session, tmp_path: Path
) -> None:
    ds = make_dataset(session, tmp_path, 200)
    ps = make_pie_set(session, ds, n_pies=80, name="k90-p5")
    owner = make_user(session, "manager", Role.coordinator)
    study = studies_service.create_study(
        session, owner, StudyCreate(name="Managed", pie_set_id=ps.id, planned_readers=4, seed=2)
    )
    session.commit()
    dialogs: list[str] = []
    answers = iter([True, False, True, False, True, True])  # each confirmation's reply, in order

    def reply(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept() if next(answers) else dialog.dismiss()

    page.on("dialog", reply)
    page.goto(f"{live_server.url}/login")
    sign_in(page, "manager", "studies")
    page.goto(f"{live_server.url}/studies/{study.id}")
    rows = "document.querySelectorAll('#progress tbody tr[data-reader-id]').length"
    page.fill("textarea[name=names]", "Dr Ray\nDr Xu")
    page.click("#enroll button[type=submit]")
    wait_until(page, f"{rows} === 2")  # new readers appear without a reload
    # a name already in the study: asked, and enrolled only when confirmed
    page.fill("textarea[name=names]", "dr ray")
    page.click("#enroll button[type=submit]")
    wait_until(page, f"{rows} === 3")
    assert "Already in this study: dr ray" in dialogs[0]
    page.fill("textarea[name=names]", "Dr Xu")
    page.click("#enroll button[type=submit]")
    wait_until(page, "document.getElementById('message').textContent.includes('already in')")
    assert page.evaluate(rows) == 3 and "Already in this study: Dr Xu" in dialogs[1]
    # withdrawing a link asks first, and says what happens to an open screen
    page.click("#progress tr:nth-child(1) [data-revoke]")
    wait_until(
        page,
        "document.querySelector('#progress tr:nth-child(1) .link-state').textContent === 'withdrawn'",
    )
    assert "open reading screen" in dialogs[2] and "stay in that browser" in dialogs[2]
    assert page.is_hidden("#progress tr:nth-child(1) [data-revoke]")
    # a new link asks too; dismissed, nothing changes
    page.click("#progress tr:nth-child(2) [data-reissue]")
    assert "signed out" in dialogs[3] and "kept in that browser" in dialogs[3]
    assert page.query_selector("#links input") is None or "Dr Xu" not in page.inner_text("#links")
    page.click("#progress tr:nth-child(1) [data-reissue]")
    page.wait_for_selector("#links input[aria-label='Invitation link for Dr Ray']")
    wait_until(
        page, "document.querySelector('#progress tr:nth-child(1) .link-state').textContent === ''"
    )
    screenshot(page, "coordinator-reader-management")
    page.click("#progress tr:nth-child(3) [data-revoke]")
    wait_until(
        page,
        "document.querySelector('#progress tr:nth-child(3) .link-state').textContent === 'withdrawn'",
    )
    assert len(dialogs) == 6
