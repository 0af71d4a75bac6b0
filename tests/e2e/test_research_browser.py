"""The researcher in a real browser: datasets, PIE sets, a PIE set's distribution and thumbnails."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from backend.auth.models import Role
from backend.db import make_sessionmaker
from backend.runs.worker import Worker
from tests.e2e.conftest import LiveServer, screenshot, sign_in, wait_until
from tests.factories import make_dataset, make_pie_set, make_split_dataset, make_user


def test_researcher_browses_pie_sets(
    page: Any, live_server: LiveServer, session: Session, tmp_path: Path
) -> None:
    ds = make_dataset(session, tmp_path, 80, name="synthetic-cxr")
    make_pie_set(session, ds, n_pies=8, name="smallcnn-k90-p5")
    make_user(session, "rex", Role.researcher)
    session.commit()
    page.goto(f"{live_server.url}/login")
    sign_in(page, "rex", "research")
    assert "synthetic-cxr" in page.inner_text("#datasets")
    screenshot(page, "research-index")
    page.click("text=smallcnn-k90-p5")
    page.wait_for_url("**/research/piesets/*")
    wait_until(
        page,
        "[...document.querySelectorAll('#thumbs img')].every(i => i.complete && i.naturalWidth > 0)",
    )
    assert len(page.query_selector_all("#thumbs li")) == 8
    assert len(page.query_selector_all("#score-hist rect")) == 20
    screenshot(page, "research-pieset")


@pytest.mark.slow
def test_researcher_starts_a_run_and_follows_it_to_its_pie_set(
    page: Any, live_server: LiveServer, session: Session, tmp_path: Path, engine: Engine
) -> None:
    make_split_dataset(session, tmp_path)
    make_user(session, "rex", Role.researcher)
    session.commit()
    page.goto(f"{live_server.url}/login")
    sign_in(page, "rex", "research")
    form = page.locator("#start-run")
    assert form.locator("input[name=store_path]").is_hidden()  # fields follow the source
    form.locator("select[name=source]").select_option("store")
    assert form.locator("input[name=store_path]").is_visible()
    form.locator("input[name=store_path]").fill("/etc")
    form.locator("button[type=submit]").click()
    wait_until(page, "document.querySelector('#message').textContent.includes('outside')")

    form.locator("select[name=source]").select_option("train")
    form.locator("input[name=name]").fill("browser-pies")
    form.locator("input[name=seeds]").fill("0, 1")
    form.locator("input[name=image_size]").fill("32")
    form.locator("input[name=epochs]").fill("1")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/research/runs/*")
    assert page.inner_text("#run-status") == "queued"

    worker = Worker(
        make_sessionmaker(engine), live_server.settings, lease_s=5, heartbeat_s=0.5,
        poll_s=0.1, say=lambda _line: None,
    )  # fmt: skip
    thread = threading.Thread(target=worker.serve, kwargs={"drain": True})
    thread.start()
    wait_until(
        page, "document.querySelector('#run-status').textContent === 'succeeded'", timeout=120_000
    )
    thread.join(timeout=60)
    assert page.get_attribute("#run-progress", "value") == "1"
    assert "seed 1:" in page.inner_text("#run-log")
    assert page.locator("#cancel-run").is_hidden()
    screenshot(page, "research-run")
    page.click("text=Open the new PIE set and its report")
    page.wait_for_url("**/research/piesets/*")
    assert "browser-pies" in page.inner_text("h1")
