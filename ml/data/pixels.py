"""Decoding a radiograph into 8-bit grayscale, the one way the engine and the server both read
images (no torch here: the server imports it on every request that makes a derivative).

8-bit grayscale and RGB images are converted as Pillow does. Images of more than 8 bits (16-bit
PNG, 32-bit integer or float TIFF) are scaled from their own darkest to their brightest pixel:
Pillow's own conversion clips them at 255, which turns most of a 12- or 16-bit radiograph white.
DICOM files are shown through their default window (ml.data.radiograph), MONOCHROME1 inverted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ml.data.radiograph import WIDE_MODES, apply_window, is_dicom, read_dicom


def to_gray8(img: Image.Image) -> Image.Image:
    """The image as 8-bit grayscale (mode L)."""
    if img.mode == "L":
        return img.copy()
    if img.mode not in WIDE_MODES:
        return img.convert("L")
    values = np.asarray(img, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def read_gray8(path: Path) -> Image.Image:
    if is_dicom(path):
        r = read_dicom(path)
        return Image.fromarray(apply_window(r.values, r.window, r.invert), mode="L")
    with Image.open(path) as img:
        return to_gray8(img)
