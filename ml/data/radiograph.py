"""A radiograph's pixel values, in the units its source gives them, with its default window.

Every image piestudy reads (PNG, JPEG, TIFF, DICOM) comes through `read_radiograph`:
- `values` are the modality values (DICOM: after the rescale slope and intercept or the
  modality LUT; other formats: the stored grey levels), as float64;
- `invert` is True for MONOCHROME1 (a high value is dark): shown inverted, as MONOCHROME2;
- `window` is the default window in the same units: the header's first Window Center/Width,
  else the input range of its VOI LUT, else the image's own range;
- `pixel_spacing_mm` is (row, column) spacing where the header gives a non-zero one.

Windowing follows the DICOM linear function (PS3.3 C.11.2.1.2), so a window of centre 128 and
width 256 maps 8-bit grey levels to themselves, and a window spanning an image's own range is
the min-max scaling that 16-bit PNGs always had here.

Only single-frame grayscale DICOM is read: multi-frame and colour images are refused with a
message that says so. Compressed transfer syntaxes (JPEG, JPEG-LS, JPEG 2000) are decoded by
pydicom's pixel-data plugins (pylibjpeg with its openjpeg and libjpeg plugins).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DICOM_SUFFIXES = (".dcm", ".dicom")


class ImageReadError(ValueError):
    """An image that cannot be read; the message says why (never a pixel or tag value)."""


@dataclass(frozen=True)
class Window:
    center: float
    width: float


@dataclass(frozen=True)
class Radiograph:
    values: np.ndarray  # float64 [rows, columns]
    window: Window
    invert: bool
    pixel_spacing_mm: tuple[float, float] | None
    bits_stored: int

    @property
    def value_range(self) -> tuple[float, float]:
        return float(self.values.min()), float(self.values.max())


def is_dicom(path: Path) -> bool:
    """A DICOM file: the 'DICM' mark after the 128-byte preamble, or a .dcm name."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with path.open("rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def apply_window(values: np.ndarray, window: Window, invert: bool = False) -> np.ndarray:
    """8-bit grey levels (uint8) of `values` under the DICOM linear window function."""
    c, w = window.center, max(window.width, 1.0)
    if w <= 1.0:
        y = np.where(values <= c - 0.5, 0.0, 255.0)
    else:
        y = ((values - (c - 0.5)) / (w - 1.0) + 0.5) * 255.0
    out = np.clip(np.rint(y), 0, 255).astype(np.uint8)
    return 255 - out if invert else out


def own_range_window(values: np.ndarray) -> Window:
    """The window that spans the image's own range (min-max scaling)."""
    low, high = float(values.min()), float(values.max())
    return Window((low + high) / 2 + 0.5, high - low + 1.0)


def _first(value: Any) -> float:
    """A DS value or the first of several (Window Center/Width may hold one per window)."""
    from pydicom.multival import MultiValue

    if isinstance(value, MultiValue | list | tuple):
        value = next(iter(value))
    return float(value)


def _spacing(ds: object) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        raw = getattr(ds, keyword, None)
        if raw is None:
            continue
        try:
            row, col = (float(v) for v in raw)
        except (TypeError, ValueError):
            continue
        if row > 0 and col > 0:
            return row, col
    return None


def _dicom_window(ds: object, values: np.ndarray) -> Window:
    center, width = getattr(ds, "WindowCenter", None), getattr(ds, "WindowWidth", None)
    if center is not None and width is not None:
        try:
            window = Window(_first(center), _first(width))
        except (TypeError, ValueError, IndexError):
            window = None
        if window is not None and window.width >= 1:
            return window
    luts = getattr(ds, "VOILUTSequence", None)
    if luts:
        descriptor = luts[0].LUTDescriptor
        entries = int(descriptor[0]) or 65536  # 0 stands for 2^16 entries
        first = float(descriptor[1])
        return Window(first + entries / 2, float(entries))
    return own_range_window(values)


def read_dicom(path: Path) -> Radiograph:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels.processing import apply_modality_lut

    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
        raise ImageReadError(f"not a readable DICOM file ({exc})") from None
    if "PixelData" not in ds:
        raise ImageReadError("the DICOM file holds no image (no Pixel Data)")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ImageReadError(
            f"multi-frame DICOM ({frames} frames): only single radiographs can be read"
        )
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ImageReadError(
            f"colour DICOM ({photometric or 'no photometric interpretation'}, {samples} samples"
            " per pixel): only grayscale radiographs can be read"
        )
    syntax = ds.file_meta.get("TransferSyntaxUID")
    try:
        raw = ds.pixel_array
    except Exception as exc:  # the plugins raise many kinds; the message names the syntax
        name = getattr(syntax, "name", str(syntax))
        raise ImageReadError(f"DICOM pixel data cannot be decoded ({name}): {exc}") from None
    if raw.ndim != 2:
        raise ImageReadError(f"DICOM pixel data has shape {raw.shape}; expected one 2-D image")
    values = np.asarray(apply_modality_lut(raw, ds), dtype=np.float64)
    return Radiograph(
        values=values,
        window=_dicom_window(ds, values),
        invert=photometric == "MONOCHROME1",
        pixel_spacing_mm=_spacing(ds),
        bits_stored=int(ds.get("BitsStored", raw.dtype.itemsize * 8)),
    )


WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def read_raster(path: Path) -> Radiograph:
    """PNG, JPEG, TIFF...: grey levels as stored (colour converted as Pillow does)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            wide = img.mode in WIDE_MODES
            gray = img if wide or img.mode == "L" else img.convert("L")
            values = np.asarray(gray, dtype=np.float64)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(f"not a readable image ({exc})") from None
    if values.ndim != 2 or values.size == 0:
        raise ImageReadError(f"image has shape {values.shape}; expected one 2-D image")
    window = own_range_window(values) if wide else Window(128.0, 256.0)
    return Radiograph(values, window, False, None, 16 if wide else 8)


def read_radiograph(path: Path) -> Radiograph:
    return read_dicom(path) if is_dicom(path) else read_raster(path)


def check_image(path: Path) -> str | None:
    """Why `path` cannot be read as a radiograph, or None when it can (it is fully decoded)."""
    try:
        read_radiograph(path)
    except ImageReadError as exc:
        return str(exc)
    return None
