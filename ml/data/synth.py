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
from collections.abc import Callable, Iterator
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


def render(findings: set[str], rng: np.random.Generator, size: int = 128) -> FloatImage:
    """One image in [0, 1] (float32, size x size)."""
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
    img = img + rng.normal(0, 0.035, img.shape).astype(np.float32)
    # soft blur (3x3 box, twice) and a film curve
    for _ in range(2):
        padded = np.pad(img, 1, mode="edge")
        windows = [padded[dy : dy + size, dx : dx + size] for dy in range(3) for dx in range(3)]
        img = np.mean(windows, axis=0)
    return np.asarray(np.clip(img, 0, 1), dtype=np.float32)


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
        yield item, render(set(item.findings), np.random.default_rng([seed, 2, item.index]), size)


def write_dataset(
    out: Path, n: int, seed: int, size: int = 128, progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """PNG images under out/images and NIH-CXR-LT-style label files per split."""
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[list[object]]] = {"train": [], "val": [], "test": []}
    for item, pixels in generate(n, seed, size):
        Image.fromarray((pixels * 255).round().astype(np.uint8), mode="L").save(
            images / item.image_id
        )
        labels = [int(c in item.findings) for c in NIH_CXR_LT_CLASSES]
        labels[0] = int(not item.findings)  # No Finding
        rows[item.split].append([item.image_id, item.patient_id, *labels])
        if progress:
            progress(1)
    for split, body in rows.items():
        with (out / f"synthetic-cxr-lt_labels_{split}.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "subj_id", *NIH_CXR_LT_CLASSES])
            w.writerows(body)
    return {k: len(v) for k, v in rows.items()}
