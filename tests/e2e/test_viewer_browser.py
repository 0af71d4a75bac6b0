"""The radiologist's viewer in a real browser, on the shared DICOM chest (1955x1841, 15 bits,
MONOCHROME1): window/level on the image data, presets, typed numbers, the distance tool by
mouse and by keyboard, the magnifier, 1:1, reset and pin across cases, the next case fetched
ahead. Screenshots at 1280x800 and 3840x2160."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session

from backend.auth.models import Role
from backend.datasets import service as datasets_service
from backend.studies import service as studies_service
from backend.studies.models import StudyStatus
from backend.studies.schemas import StudyCreate
from ml.data.radiograph import Window, apply_window, read_radiograph
from tests.e2e.conftest import LiveServer, screenshot, wait_until
from tests.factories import make_pie_set, make_user, write_dicom


@pytest.fixture
def dicom_reader(
    session: Session, tmp_path: Path, live_server: LiveServer, shared_data: Path
) -> Callable[..., tuple[str, dict[str, int], Path]]:
    """An open study of the shared chest and five generated radiographs (spacing 0.2 mm): the
    reader's link, each image's position, and the image folder."""

    def build(presets: list[dict[str, Any]] | None = None) -> tuple[str, dict[str, int], Path]:
        images = tmp_path / "images"
        images.mkdir()
        shutil.copy(shared_data / "dicom" / "RG1_UNCR.dcm", images / "chest.dcm")
        rng = np.random.default_rng(1)
        names = ["chest.dcm"]
        for i in range(5):
            pixels = (rng.random((400, 500)) * 4000).astype(np.uint16)
            write_dicom(images / f"gen{i}.dcm", pixels, window=(2000, 4000), spacing=(0.2, 0.2))
            names.append(f"gen{i}.dcm")
        labels = tmp_path / "labels.csv"
        with labels.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["image", "labels"])
            w.writerows([n, "Effusion"] for n in names)
        ds = datasets_service.import_dataset(
            session, name="dicom", fmt="plain", labels_files=[labels], image_dir=images
        )
        ps = make_pie_set(session, ds, n_pies=3)
        owner = make_user(session, "viewer-owner", Role.coordinator)
        study = studies_service.create_study(
            session,
            owner,
            StudyCreate(
                name="Viewer",
                pie_set_id=ps.id,
                planned_readers=1,
                seed=2,
                cases_per_reader=6,
                window_presets=presets,
            ),
        )
        enrolled = studies_service.enroll_readers(session, study.id, owner, ["Dr V"])[0]
        studies_service.change_status(session, study, StudyStatus.open)
        positions = {
            a.external_id: a.position
            for a in studies_service.reader_assignments(session, study, enrolled.reader.id)
        }
        session.commit()
        return f"{live_server.url}/r/{enrolled.token}", positions, images

    return build


def open_full(page: Any, link: str, position: int) -> None:
    page.goto(link)
    page.goto(page.url.split("/read")[0] + f"/read/cases/{position}")
    page.wait_for_selector("#reader[data-ready=true][data-image=shown]")
    page.wait_for_selector("#stage[data-full=shown]", timeout=30_000)


def pixels(page: Any, points: list[tuple[int, int]]) -> list[int]:
    return [
        int(v)
        for v in page.evaluate(
            """(pts) => { const c = document.getElementById('image').getContext('2d');
             return pts.map(([x, y]) => c.getImageData(x, y, 1, 1).data[0]); }""",
            points,
        )
    ]


def css_scale(page: Any) -> float:
    return float(
        page.evaluate(
            "(() => { const c = document.getElementById('image');"
            " return c.getBoundingClientRect().width / c.width; })()"
        )
    )


def fitted(page: Any) -> bool:
    """The image fills the stage's width or height, within it."""
    return bool(
        page.evaluate(
            """(() => { const i = document.getElementById('image').getBoundingClientRect();
             const s = document.getElementById('stage').getBoundingClientRect();
             const w = Math.abs(i.width - s.width) < 2 && i.height <= s.height + 2;
             const h = Math.abs(i.height - s.height) < 2 && i.width <= s.width + 2;
             return w || h; })()"""
        )
    )


def painted(page: Any, suffix: str = "") -> None:
    """Wait until the canvas shows the window the controls say (it paints on the next frame)."""
    wait_until(
        page,
        "(() => { const s = document.getElementById('stage').dataset;"
        f" return s.painted === s.window + '{suffix}'; }})()",
    )


def test_window_level_works_on_the_image_data(
    browser: Any, dicom_reader: Callable[..., tuple[str, dict[str, int], Path]]
) -> None:
    link, positions, images = dicom_reader()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    open_full(page, link, positions["chest.dcm"])
    assert page.evaluate("document.getElementById('image').width") == 1841  # full resolution
    # the file's own window is the default, in its own units
    assert page.input_value("#window-center") == "15000"
    assert page.input_value("#window-width") == "30000"
    source = read_radiograph(images / "chest.dcm")
    rng = np.random.default_rng(0)
    points = [
        (int(x), int(y))
        for x, y in zip(rng.integers(0, 1841, 40), rng.integers(0, 1955, 40), strict=True)
    ]

    def expected(window: Window) -> list[int]:
        shown = apply_window(source.values, window, invert=True)  # MONOCHROME1
        return [int(shown[y, x]) for x, y in points]

    def close(a: list[int], b: list[int]) -> bool:  # rounding of exact halves may differ by 1
        return max(abs(p - q) for p, q in zip(a, b, strict=True)) <= 1

    painted(page)
    assert close(pixels(page, points), expected(Window(15000, 30000)))
    # typed numbers
    page.fill("#window-center", "9000")
    page.fill("#window-width", "6000")
    page.press("#window-width", "Enter")
    wait_until(page, "document.getElementById('stage').dataset.window === '9000/6000'")
    painted(page)
    assert close(pixels(page, points), expected(Window(9000, 6000)))
    # a drag with the right button: wider and lower
    box = page.eval_on_selector("#stage", "e => e.getBoundingClientRect().toJSON()")
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down(button="right")
    page.mouse.move(cx + 60, cy - 30, steps=4)
    page.mouse.up(button="right")
    center, width = (float(v) for v in page.get_attribute("#stage", "data-window").split("/"))
    assert width > 6000 and center > 9000
    # presets, chosen from the list or by key; invert
    page.select_option("#preset", "lung")
    lung = page.get_attribute("#stage", "data-window")
    assert lung != "9000/6000"
    page.focus("#stage")
    page.keyboard.press("p")
    assert page.input_value("#preset") == "mediastinum"
    painted(page)
    before = pixels(page, points[:5])
    page.keyboard.press("i")
    painted(page, "/inverted")
    assert [255 - v for v in before] == pixels(page, points[:5])
    context.close()


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (3840, 2160)])
def test_lung_window_and_a_measurement_at_desk_and_4k_sizes(
    browser: Any,
    dicom_reader: Callable[..., tuple[str, dict[str, int], Path]],
    width: int,
    height: int,
) -> None:
    link, positions, _ = dicom_reader()
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    open_full(page, link, positions["chest.dcm"])
    page.select_option("#preset", "lung")
    page.focus("#stage")
    # the distance tool by mouse: the chest has no pixel spacing, so pixels, said so
    page.keyboard.press("d")
    box = page.eval_on_selector("#image", "e => e.getBoundingClientRect().toJSON()")
    a = (box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    b = (box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.5)
    page.mouse.click(*a)
    page.mouse.click(*b)
    text = page.inner_text("#measurement")
    assert "no pixel spacing" in text
    measured = float(text.split("Distance: ")[1].split(" px")[0])
    assert measured == pytest.approx(0.4 * 1841, abs=2)
    page.keyboard.press("m")
    page.mouse.move(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.4)
    assert page.is_visible("#magnifier")
    screenshot(page, f"viewer-dicom-chest-lung-{width}x{height}")
    context.close()


def test_distance_in_mm_by_keyboard_actual_size_and_reset_or_pin_across_cases(
    browser: Any, dicom_reader: Callable[..., tuple[str, dict[str, int], Path]]
) -> None:
    link, positions, _ = dicom_reader()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    first = min(p for name, p in positions.items() if name != "chest.dcm")  # 1 or 2
    open_full(page, link, first)
    page.focus("#stage")
    page.keyboard.press("d")
    page.keyboard.press("Enter")
    for _ in range(10):
        page.keyboard.press("ArrowRight")  # 4 screen pixels each
    page.keyboard.press("Enter")
    scale = css_scale(page)
    mm = float(page.inner_text("#measurement").split("Distance: ")[1].split(" mm")[0])
    assert mm == pytest.approx(40 / scale * 0.2, abs=0.15)  # 0.2 mm per pixel
    page.keyboard.press("Escape")
    assert page.get_attribute("#measure", "aria-pressed") == "false"
    # the arrows move between cases again once the tool is off; 1:1 is one pixel per pixel
    page.keyboard.press("a")
    assert css_scale(page) == pytest.approx(1.0, abs=0.01)
    # zoom and window reset at the next case...
    page.keyboard.press("+")
    assert not fitted(page)
    for k in "y3e":
        page.keyboard.press(k)
    page.wait_for_selector("#save-state[data-state=saved]")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#reader[data-ready=true][data-position='{first + 1}']")
    page.wait_for_selector("#stage[data-full=shown]")
    assert fitted(page)
    # ...unless pinned
    page.focus("#stage")
    page.keyboard.press("k")
    page.keyboard.press("+")
    page.keyboard.press("+")
    pinned = page.evaluate("document.getElementById('image').getBoundingClientRect().width")
    page.fill("#window-width", "1234")
    page.press("#window-width", "Enter")
    page.focus("#stage")
    for k in "y3e":
        page.keyboard.press(k)
    page.wait_for_selector("#save-state[data-state=saved]")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#reader[data-ready=true][data-position='{first + 2}']")
    page.wait_for_selector("#stage[data-full=shown]")
    assert page.evaluate(
        "document.getElementById('image').getBoundingClientRect().width"
    ) == pytest.approx(pinned, rel=0.02)
    assert page.input_value("#window-width") == "1234"
    # the next case's full rendering was fetched ahead
    key = page.get_attribute("#reader", "data-reader-key")
    wait_until(
        page,
        f"""(async () => {{ const c = await caches.open('piestudy-reader-{key}');
             return Boolean(await c.match('/api/reader/cases/{first + 3}/image?size=full')); }})()""",
    )
    context.close()


def test_a_study_sets_its_own_window_presets(
    browser: Any, dicom_reader: Callable[..., tuple[str, dict[str, int], Path]]
) -> None:
    presets = [
        {"key": "soft", "label": "Soft tissue (CR units)", "center": 20000, "width": 9000},
        {"key": "dense", "label": "Dense", "from_percentile": 80, "to_percentile": 100},
    ]
    link, positions, _ = dicom_reader(presets)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    open_full(page, link, positions["chest.dcm"])
    options = page.eval_on_selector_all(
        "#preset option:not([disabled])", "os => os.map(o => o.textContent)"
    )
    assert options == ["File default", "Soft tissue (CR units)", "Dense"]
    page.select_option("#preset", "soft")
    assert page.get_attribute("#stage", "data-window") == "20000/9000"
    page.focus("#stage")
    page.keyboard.press("p")
    assert page.input_value("#preset") == "dense"
    page.keyboard.press("p")
    assert page.input_value("#preset") == "default"
    assert page.get_attribute("#stage", "data-window") == "15000/30000"
    context.close()
