"""The researcher in a real browser: datasets, PIE sets, a PIE set's distribution and thumbnails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from backend.auth.models import Role
from tests.e2e.conftest import LiveServer, screenshot
from tests.factories import PASSWORD, make_dataset, make_pie_set, make_user


def test_researcher_browses_pie_sets(
    page: Any, live_server: LiveServer, session: Session, tmp_path: Path
) -> None:
    ds = make_dataset(session, tmp_path, 80, name="synthetic-cxr")
    make_pie_set(session, ds, n_pies=8, name="smallcnn-k90-p5")
    make_user(session, "rex", Role.researcher)
    session.commit()
    page.goto(f"{live_server.url}/login")
    page.fill("input[name=username]", "rex")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/research")
    assert "synthetic-cxr" in page.inner_text("#datasets")
    screenshot(page, "research-index")
    page.click("text=smallcnn-k90-p5")
    page.wait_for_url("**/research/piesets/*")
    page.wait_for_function(
        "[...document.querySelectorAll('#thumbs img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    assert len(page.query_selector_all("#thumbs li")) == 8
    assert len(page.query_selector_all("#score-hist rect")) == 20
    screenshot(page, "research-pieset")
