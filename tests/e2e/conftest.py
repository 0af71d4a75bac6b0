"""A live server (uvicorn in a thread, on the test database) and Debian's Chromium via Playwright."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from backend.config import Settings
from backend.main import create_app
from tests.dbutil import need
from tests.factories import PASSWORD

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, settings: Settings, port: int):
        self.settings = settings
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(
            create_app(self.settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        assert self.server is not None and self.thread is not None
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    port = free_port()
    server = LiveServer(
        settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"}), port
    )
    server.start()
    yield server
    if server.server is not None and not server.server.should_exit:
        server.stop()


@pytest.fixture(scope="session")
def browser():
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        need("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    blocked: list[str] = []
    pg.on(
        "console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None
    )
    yield pg
    context.close()
    assert not blocked, f"the pages broke their own Content Security Policy: {blocked}"


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def wait_until(page: Any, expression: str, timeout: float = 15_000) -> None:
    """Poll a JavaScript expression until it is true. (Playwright's wait_for_function compiles
    its predicate with eval, which the pages' Content Security Policy rightly forbids; evaluate
    goes through the DevTools protocol and is not affected.) A page that navigates or reloads
    meanwhile (a status change reloads the study page) is polled again once it has loaded."""
    deadline = time.monotonic() + timeout / 1000
    while not _evaluate_across_navigation(page, expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true after {timeout / 1000:g} s: {expression}")
        time.sleep(0.1)


def _evaluate_across_navigation(page: Any, expression: str) -> Any:
    try:
        return page.evaluate(expression)
    except PlaywrightError as e:
        if "context was destroyed" not in str(e) and "navigat" not in str(e):
            raise
        page.wait_for_load_state()
        return False


def sign_in(page: Any, username: str, home: str) -> None:
    """Fill the sign-in form open on `page` with the test password; wait for the role's home."""
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/{home}")
