"""A synthetic, long-tailed, multi-label chest-X-ray-like dataset, deterministic from a seed.

Each image is a frontal "radiograph": soft-tissue body, two dark lung fields crossed by ribs,
a bright mediastinum and heart, a spine, a diaphragm, film grain and blur. Each finding of
NIH-CXR-LT's 20 classes adds its own visible pattern (an effusion fills a costophrenic angle, a
nodule is a small round opacity, cardiomegaly widens the heart ...), so a small CNN can learn
them. Prevalences follow NIH-CXR-LT's long tail (Infiltration about 18% down to
Pneumomediastinum about 0.15%: more than 100x), and findings co-occur through a shared latent
severity plus clinical pairings (Effusion with Atelectasis, Edema with Cardiomegaly,
Pneumothorax with Subcutaneous Emphysema ...). Image i depends only on (seed, i).
"""

from __future__ import annotations

import csv
import math
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from ml.data.labels import NIH_CXR_LT_CLASSES

FINDINGS = NIH_CXR_LT_CLASSES[1:]  # every class but "No Finding"
# Target prevalence of each finding (NIH-CXR-LT-like long tail).
PREVALENCE: dict[str, float] = {
    "Infiltration": 0.18, "Effusion": 0.12, "Atelectasis": 0.10, "Nodule": 0.056, "Mass": 0.05,
    "Consolidation": 0.042, "Pneumothorax": 0.045, "Pleural Thickening": 0.03, "Cardiomegaly": 0.025,
    "Emphysema": 0.022, "Edema": 0.02, "Fibrosis": 0.015, "Subcutaneous Emphysema": 0.01,
    "Pneumonia": 0.013, "Tortuous Aorta": 0.007, "Calcification of the Aorta": 0.004,
    "Pneumoperitoneum": 0.003, "Hernia": 0.002, "Pneumomediastinum": 0.0012,
}  # fmt: skip
# (given, then, probability): a finding that often comes with another.
PAIRS: tuple[tuple[str, str, float], ...] = (
    ("Effusion", "Atelectasis", 0.25), ("Edema", "Cardiomegaly", 0.35), ("Edema", "Effusion", 0.4),
    ("Cardiomegaly", "Effusion", 0.25), ("Pneumonia", "Consolidation", 0.35),
    ("Pneumonia", "Infiltration", 0.4), ("Pneumothorax", "Subcutaneous Emphysema", 0.12),
    ("Pneumomediastinum", "Subcutaneous Emphysema", 0.5), ("Emphysema", "Pneumothorax", 0.12),
    ("Mass", "Nodule", 0.2), ("Fibrosis", "Pleural Thickening", 0.25),
    ("Tortuous Aorta", "Calcification of the Aorta", 0.3),
)  # fmt: skip
SEVERITY_WEIGHT = 0.9  # how strongly the shared latent severity couples findings
FloatImage = npt.NDArray[np.float32]


def _base_logits() -> dict[str, float]:
    # Solve for b in E_z[sigmoid(b + w z)] = prevalence, z ~ N(0, 1), by bisection on a grid.
    z = np.linspace(-4, 4, 801)
    weights = np.exp(-(z**2) / 2)
    weights /= weights.sum()
    out = {}
    for name, target in PREVALENCE.items():
        lo, hi = -20.0, 5.0
        for _ in range(60):
            mid = (lo + hi) / 2
            mean = float(np.sum(weights / (1 + np.exp(-(mid + SEVERITY_WEIGHT * z)))))
            lo, hi = (mid, hi) if mean < target else (lo, mid)
        out[name] = (lo + hi) / 2
    return out


_LOGITS = _base_logits()


def sample_findings(rng: np.random.Generator) -> set[str]:
    z = rng.normal()
    found = {
        n
        for n, b in _LOGITS.items()
        if rng.random() < 1 / (1 + math.exp(-(b + SEVERITY_WEIGHT * z)))
    }
    for given, then, p in PAIRS:
        if given in found and rng.random() < p:
            found.add(then)
    return found


@dataclass(frozen=True)
class Geometry:
    """Where the anatomy lies in one image, in pixels; jittered per image."""

    size: int
    cx: float
    lung_w: float
    lung_h: float
    lung_top: float
    heart_w: float
    tilt: float


class _Canvas:
    def __init__(self, size: int, rng: np.random.Generator):
        self.size = size
        self.rng = rng
        y, x = np.mgrid[0:size, 0:size].astype(np.float32)
        self.x, self.y = x / size, y / size
        self.img = np.zeros((size, size), dtype=np.float32)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, soft: float = 0.02) -> FloatImage:
        d = np.sqrt(((self.x - cx) / rx) ** 2 + ((self.y - cy) / ry) ** 2)
        return np.asarray(np.clip((1 - d) / max(soft / min(rx, ry), 1e-3), 0, 1), dtype=np.float32)

    def blob(self, cx: float, cy: float, r: float) -> FloatImage:
        d2 = (self.x - cx) ** 2 + (self.y - cy) ** 2
        return np.asarray(np.exp(-d2 / (2 * r * r)), dtype=np.float32)


# Above this size the anatomy is drawn at DETAIL_BASE and resized (it is smooth: soft ellipses,
# ribs a few pixels wide), and only what has fine grain (lung markings, film noise, the blur) is
# made at the full size: a 512-px image in about a quarter of the time of drawing it whole.
DETAIL_BASE = 128


def render(findings: set[str], rng: np.random.Generator, size: int = 128) -> FloatImage:
    """One image in [0, 1] (float32, size x size)."""
    if size <= DETAIL_BASE:
        return _film(_anatomy(findings, rng, size)[0], rng, size)
    base, base_lungs = _anatomy(findings, rng, DETAIL_BASE)
    img, lungs = _resize(base, size), _resize(base_lungs, size)
    # lung markings: band-limited mottling inside the lung fields, at two scales
    for scale, amount in ((size // 64, 0.018), (size // 24, 0.02)):
        field = rng.normal(0, 1, (size // scale + 1, size // scale + 1)).astype(np.float32)
        img += amount * _resize(field, size) * lungs
    return _film(img, rng, size, passes=max(2, size // 256))


def _resize(img: FloatImage, size: int) -> FloatImage:
    out = Image.fromarray(img, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    return np.array(out, dtype=np.float32)


def _film(img: FloatImage, rng: np.random.Generator, size: int, passes: int = 2) -> FloatImage:
    """Film grain, a soft blur (a 3x3 box, `passes` times) and the clip to [0, 1]."""
    img = img + rng.normal(0, 0.035, img.shape).astype(np.float32)
    for _ in range(passes):
        padded = np.pad(img, 1, mode="edge")
        if size <= DETAIL_BASE:  # the original arithmetic, so small images stay as they were
            windows = [padded[dy : dy + size, dx : dx + size] for dy in range(3) for dx in range(3)]
            img = np.mean(windows, axis=0)
        else:  # the same box, separably
            rows = padded[:-2] + padded[1:-1] + padded[2:]
            img = (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / np.float32(9)
    return np.asarray(np.clip(img, 0, 1), dtype=np.float32)


def _anatomy(
    findings: set[str], rng: np.random.Generator, size: int
) -> tuple[FloatImage, FloatImage]:
    """The body, lungs, ribs, heart and findings, before film grain and blur; and the lung mask."""
    c = _Canvas(size, rng)
    g = Geometry(
        size, 0.5 + rng.normal(0, 0.015), 0.165 + rng.normal(0, 0.008), 0.58 + rng.normal(0, 0.02),
        0.17 + rng.normal(0, 0.01), 0.13 + rng.normal(0, 0.008), rng.normal(0, 0.02),
    )  # fmt: skip
    if "Cardiomegaly" in findings:
        g = Geometry(g.size, g.cx, g.lung_w, g.lung_h, g.lung_top, g.heart_w * 1.55, g.tilt)
    if "Emphysema" in findings:
        g = Geometry(
            g.size,
            g.cx,
            g.lung_w * 1.08,
            g.lung_h * 1.1,
            g.lung_top - 0.02,
            g.heart_w * 0.85,
            g.tilt,
        )
    body = c.ellipse(g.cx, 0.58, 0.44, 0.66, 0.12)
    shoulders = c.ellipse(g.cx, 0.16, 0.47, 0.12, 0.08)
    tissue = np.maximum(body, shoulders)
    img = 0.04 + 0.42 * tissue + 0.08 * tissue * np.exp(-(((c.x - g.cx) / 0.25) ** 2))
    # each lung: an ellipse cut by its diaphragm dome, darker towards the apex
    lung_masks = []
    for side in (-1, 1):
        lx = g.cx + side * 0.185
        dome = g.lung_top + g.lung_h - 0.02 + 0.9 * (c.x - lx) ** 2 + 0.015 * (side > 0)
        shape = c.ellipse(lx, g.lung_top + g.lung_h * 0.55, g.lung_w, g.lung_h * 0.6, 0.06)
        lung_masks.append((shape * (c.y < dome)).astype(np.float32))
        img += 0.06 * (c.y > dome) * tissue  # abdomen under the dome
    left, right = lung_masks
    lungs = np.maximum(left, right)
    gradient = 1.0 + 0.35 * np.clip((g.lung_top + g.lung_h * 0.5 - c.y) / g.lung_h, -1, 1)
    lung_dark = 0.3 if "Emphysema" not in findings else 0.4
    img -= lung_dark * lungs * gradient
    # ribs: posterior arcs sloping down laterally; clavicles
    for i in range(10):
        y0 = g.lung_top + 0.02 + i * g.lung_h / 10.5
        for side, mask in ((-1, left), (1, right)):
            dx = np.abs(c.x - g.cx)
            arc = y0 + 0.55 * dx**2 - 0.04 * dx + g.tilt * side * (c.x - g.cx)
            img += 0.075 * np.exp(-(((c.y - arc) / 0.008) ** 2)) * mask
    for side in (-1, 1):
        line = 0.19 - 0.12 * np.abs(c.x - g.cx) + 0.0 * side
        img += (
            0.15
            * np.exp(-(((c.y - line) / 0.01) ** 2))
            * (np.abs(c.x - g.cx) < 0.3)
            * (np.abs(c.x - g.cx) > 0.03)
        )
    # mediastinum, heart (to the patient's left: image right), spine
    img += 0.22 * c.ellipse(g.cx, 0.36, 0.055, 0.22, 0.08)
    img += 0.3 * c.ellipse(g.cx + 0.045, g.lung_top + g.lung_h * 0.78, g.heart_w, 0.12, 0.09)
    img += 0.08 * np.exp(-(((c.x - g.cx) / 0.022) ** 2)) * tissue

    def lung_point() -> tuple[float, float]:
        side = rng.choice([-1, 1])
        return g.cx + side * (0.2 + rng.normal(0, 0.04)), g.lung_top + rng.uniform(
            0.15, 0.8
        ) * g.lung_h

    draw: dict[str, Callable[[], None]] = {}

    def add(value: npt.NDArray[np.floating[Any]]) -> None:
        nonlocal img
        img = img + value.astype(np.float32)

    draw["Infiltration"] = lambda: add(
        0.18 * sum(c.blob(*lung_point(), 0.03) for _ in range(6)) * lungs
    )
    draw["Effusion"] = lambda: add(
        0.5 * (c.y > g.lung_top + g.lung_h * 0.78 - 0.02 * (c.x - g.cx)) * lungs
    )
    draw["Atelectasis"] = lambda: add(
        0.35
        * np.exp(-(((c.y - g.lung_top - 0.65 * g.lung_h + 0.3 * (c.x - g.cx)) / 0.012) ** 2))
        * lungs
    )
    draw["Nodule"] = lambda: add(0.45 * c.ellipse(*lung_point(), 0.022, 0.022, 0.01))
    draw["Mass"] = lambda: add(0.45 * c.ellipse(*lung_point(), 0.06, 0.055, 0.02))
    draw["Consolidation"] = lambda: add(0.4 * c.ellipse(*lung_point(), 0.09, 0.07, 0.05) * lungs)
    draw["Pneumothorax"] = lambda: add(
        -0.25 * (c.y < g.lung_top + 0.25 * g.lung_h) * lungs
        + 0.3 * np.exp(-(((c.y - g.lung_top - 0.25 * g.lung_h) / 0.006) ** 2)) * lungs
    )
    draw["Pleural Thickening"] = lambda: add(0.35 * (lungs > 0.05) * (lungs < 0.35))
    draw["Cardiomegaly"] = lambda: None  # the wider heart is in the geometry
    draw["Emphysema"] = lambda: None  # larger, darker lungs and a narrow heart
    draw["Edema"] = lambda: add(
        0.3 * c.blob(g.cx - 0.14, 0.45, 0.08) + 0.3 * c.blob(g.cx + 0.14, 0.45, 0.08)
    )
    draw["Fibrosis"] = lambda: add(
        0.16 * (np.sin(c.x * size * 0.9) * np.sin(c.y * size * 0.9) > 0.6) * lungs
    )
    draw["Subcutaneous Emphysema"] = lambda: add(
        -0.3
        * (np.sin(c.y * size * 0.6 + 3 * c.x) > 0.85)
        * (body > 0.3)
        * (lungs < 0.05)
        * (np.abs(c.x - g.cx) > 0.3)
    )
    draw["Pneumonia"] = lambda: add(0.3 * c.blob(*lung_point(), 0.06) * lungs)
    draw["Tortuous Aorta"] = lambda: add(
        0.35
        * np.exp(-(((c.x - g.cx + 0.06 - 0.04 * np.sin(c.y * 14)) / 0.012) ** 2))
        * (c.y > 0.15)
        * (c.y < 0.5)
    )
    draw["Calcification of the Aorta"] = lambda: add(
        0.6 * c.ellipse(g.cx - 0.07, 0.24, 0.03, 0.015, 0.005)
    )
    draw["Pneumoperitoneum"] = lambda: add(
        -0.45 * c.ellipse(g.cx + 0.18, g.lung_top + g.lung_h + 0.07, 0.1, 0.025, 0.01)
    )
    draw["Hernia"] = lambda: add(
        0.4 * c.ellipse(g.cx, g.lung_top + g.lung_h - 0.03, 0.08, 0.07, 0.02)
    )
    draw["Pneumomediastinum"] = lambda: add(
        -0.35 * np.exp(-(((np.abs(c.x - g.cx) - 0.065) / 0.007) ** 2)) * (c.y > 0.15) * (c.y < 0.55)
    )
    for name in FINDINGS:  # a fixed order keeps the random draws reproducible
        if name in findings:
            draw[name]()
    return img, lungs


@dataclass(frozen=True)
class SynthImage:
    index: int
    image_id: str
    patient_id: str
    split: str
    findings: frozenset[str]


def plan(
    n: int, seed: int, splits: tuple[float, float, float] = (0.6, 0.2, 0.2)
) -> list[SynthImage]:
    """Labels, patients and a patient-disjoint split for n images (cheap: no pixels)."""
    rng = np.random.default_rng([seed, 0])
    out: list[SynthImage] = []
    patient = 0
    while len(out) < n:
        patient += 1
        r = rng.random()
        split = "train" if r < splits[0] else "val" if r < splits[0] + splits[1] else "test"
        for _ in range(int(rng.integers(1, 4))):
            if len(out) == n:
                break
            i = len(out)
            out.append(
                SynthImage(
                    i,
                    f"{i:06d}.png",
                    f"p{patient:05d}",
                    split,
                    frozenset(sample_findings(np.random.default_rng([seed, 1, i]))),
                )
            )
    return out


def generate(n: int, seed: int, size: int = 128) -> Iterator[tuple[SynthImage, FloatImage]]:
    for item in plan(n, seed):
        yield item, _pixels(item, seed, size)


def _pixels(item: SynthImage, seed: int, size: int) -> FloatImage:
    return render(set(item.findings), np.random.default_rng([seed, 2, item.index]), size)


def _write_images(images: Path, seed: int, size: int, items: list[SynthImage]) -> int:
    for item in items:
        pixels = _pixels(item, seed, size)
        # zlib's fastest level: a third of the default's time on these noisy images, for files
        # about a tenth larger
        Image.fromarray((pixels * 255).round().astype(np.uint8), mode="L").save(
            images / item.image_id, compress_level=1
        )
    return len(items)


def write_dataset(
    out: Path, n: int, seed: int, size: int = 128, progress: Callable[[int], None] | None = None,
    splits: tuple[float, float, float] = (0.6, 0.2, 0.2), workers: int = 1,
) -> dict[str, int]:  # fmt: skip
    """PNG images under out/images and NIH-CXR-LT-style label files per split. `workers`
    processes draw the images (each image depends only on (seed, its index), so the result is
    the same whatever their number)."""
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    items = plan(n, seed, splits)
    chunks = [items[i : i + 32] for i in range(0, len(items), 32)]
    if workers > 1:
        context = multiprocessing.get_context("spawn")  # nothing of the caller's state is forked
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            n = len(chunks)
            for done in pool.map(_write_images, [images] * n, [seed] * n, [size] * n, chunks):
                if progress:
                    progress(done)
    else:
        for chunk in chunks:
            done = _write_images(images, seed, size, chunk)
            if progress:
                progress(done)
    rows: dict[str, list[list[object]]] = {"train": [], "val": [], "test": []}
    for item in items:
        labels = [int(c in item.findings) for c in NIH_CXR_LT_CLASSES]
        labels[0] = int(not item.findings)  # No Finding
        rows[item.split].append([item.image_id, item.patient_id, *labels])
    for split, body in rows.items():
        with (out / f"synthetic-cxr-lt_labels_{split}.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "subj_id", *NIH_CXR_LT_CLASSES])
            w.writerows(body)
    return {k: len(v) for k, v in rows.items()}
