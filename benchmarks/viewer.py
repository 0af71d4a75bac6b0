"""Time to first paint and to full resolution in the reader's viewer, in Chromium, on loopback.

A study of real-size images (`--images nih`: the 1024-px NIH PNGs; `chest`: those and, one case
in ten, the 1955x1841 DICOM chest), rendered ahead as the server does when a study opens, served
by uvicorn on 127.0.0.1. One reader goes from case to case with the keyboard (answering each);
for each case after the first: from the key press that moves on to the display copy on screen
(first paint), and to the full rendering decoded and windowed on screen (full resolution).

    uv run python benchmarks/viewer.py --images nih --cases 12
    uv run python benchmarks/viewer.py --images chest --cases 12
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.loadstudy import IMAGE_SETS, Server, build_study, database, free_port  # noqa: E402

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def run(images: str, cases: int, width: int, height: int) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, database("sqlite", Path(tmp)) as url:
        where = Path(tmp)
        tokens, render_seconds = build_study(url, where, 1, cases, images)
        server = Server(url, where, free_port())
        server.start()
        first, full = [], []
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(f"http://127.0.0.1:{server.port}/r/{tokens[0]}")
                page.click("#start")
                page.wait_for_selector("#reader[data-ready=true][data-image=shown]")
                page.wait_for_selector("#stage[data-full=shown]", timeout=60_000)
                for position in range(2, cases + 1):
                    page.focus("#stage")
                    for k in "y3e":
                        page.keyboard.press(k)
                    page.wait_for_selector("#save-state[data-state=saved]")
                    t0 = time.perf_counter()
                    page.keyboard.press("Enter")
                    page.wait_for_selector(
                        f"#reader[data-ready=true][data-position='{position}'][data-image=shown]"
                    )
                    first.append(time.perf_counter() - t0)
                    page.wait_for_selector("#stage[data-full=shown]", timeout=60_000)
                    full.append(time.perf_counter() - t0)
                browser.close()
        finally:
            server.stop()

    def ms(values: list[float], q: float) -> float:
        return round(float(np.percentile(np.asarray(values) * 1000, q)), 1)

    return {
        "images": images, "cases": cases, "viewport": f"{width}x{height}",
        "rendering_ahead_s_per_image": round(render_seconds, 3),
        "first_paint_ms": {"p50": ms(first, 50), "p90": ms(first, 90), "max": ms(first, 100)},
        "full_resolution_ms": {"p50": ms(full, 50), "p90": ms(full, 90), "max": ms(full, 100)},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", choices=IMAGE_SETS[1:], default="nih")
    parser.add_argument("--cases", type=int, default=12)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    args = parser.parse_args()
    result = run(args.images, args.cases, args.width, args.height)
    print(json.dumps(result, indent=1))
    print(
        f"viewer images={args.images} first_paint_p90_ms={result['first_paint_ms']['p90']}"  # type: ignore[index]
        f" full_resolution_p90_ms={result['full_resolution_ms']['p90']}"  # type: ignore[index]
    )


if __name__ == "__main__":
    main()
