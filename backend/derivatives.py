"""The images people are shown: renderings of a dataset's files, never the files themselves.

Three kinds are made here and nowhere else, each decoded as the engine decodes the source
(ml.data.radiograph), written as PNG without any of the source's metadata, made once and kept
under the media folder:
- the full rendering: 16-bit grayscale at full size, for window/level on the image data. Its
  grey levels run over the whole 0-65535 range, brighter for brighter (MONOCHROME1 inverted);
  a sidecar (`Rendering`) says how they map back to the source's values, the default window
  and the pixel spacing;
- the display copy (8-bit, at most 1024 px, through the default window): what a reader sees
  first;
- the thumbnail (8-bit, 160 px): what a researcher browses.

The name of a rendering comes from the source's path, size and modification time, so a changed
source gets a new one, and says nothing about the image to whoever receives it.

Nor do its bytes. Re-encoding an 8-bit PNG with Pillow's defaults can give back the source file
byte for byte (it does for the NIH images), and a public dataset's files can be looked up by
their sha256. So each rendering's compressed data is cut into IDAT chunks of a size drawn from
a random salt kept in the media folder: the pixels are the source's, the bytes match no file
outside this installation.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import json
import os
import secrets
import struct
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Kind:
    folder: str
    longest_side: int | None  # None: full size
    bits: int = 8


FULL = Kind("full", None, 16)  # the full-range rendering the viewer windows
DISPLAY = Kind("display", 1024)  # longest side of the copy a reader sees first
THUMBNAIL = Kind("thumbs", 160)
LEVELS = 65535  # the full rendering's top grey level


@dataclass(frozen=True)
class Rendering:
    """How the full rendering's grey levels g map to the source's values: value = slope * g +
    intercept (slope < 0 for MONOCHROME1). Window and spacing are in source units and mm."""

    columns: int
    rows: int
    slope: float
    intercept: float
    window_center: float
    window_width: float
    pixel_spacing_mm: tuple[float, float] | None
    bits_stored: int


@functools.lru_cache(maxsize=1 << 16)
def _canonical(source: str) -> str:
    # realpath walks every component of the path with a system call each: a tenth of the
    # server's time under a room of readers, for an answer that changes only when a dataset's
    # folders are moved (and the file's size and time in the key catch a different file)
    return os.path.realpath(source)


def derivative_path(source: Path, kind: Kind, media_dir: Path) -> Path:
    stat = source.stat()
    key = (
        f"{_canonical(str(source))}\0{stat.st_size}\0{stat.st_mtime_ns}\0{kind.longest_side}"
        f"\0{kind.bits}"
    )
    name = hashlib.sha256(key.encode()).hexdigest()[:32]
    return media_dir / kind.folder / f"{name}.png"


SALT_FILE = "rendering.salt"


def _salt(media_dir: Path) -> bytes:
    from ml.fileio import atomic_write

    path = media_dir / SALT_FILE
    if not path.is_file():
        atomic_write(path, secrets.token_bytes(32))
    return path.read_bytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(image: object, salt: bytes, name: str) -> bytes:
    """The image as PNG with no metadata (a fresh image: only IHDR, IDAT and IEND), its
    compressed data cut into IDAT chunks of a salted size."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # type: ignore[attr-defined]
    raw = buffer.getvalue()
    at, head, idat = 8, b"", []
    while at < len(raw):
        (length,) = struct.unpack(">I", raw[at : at + 4])
        kind = raw[at + 4 : at + 8]
        if kind == b"IDAT":
            idat.append(raw[at + 8 : at + 8 + length])
        elif kind != b"IEND":
            head += raw[at : at + 12 + length]
        at += 12 + length
    data = b"".join(idat)
    digest = hmac.new(salt, name.encode(), hashlib.sha256).digest()
    size = 4096 + int.from_bytes(digest[:4], "big") % 28672
    body = b"".join(_chunk(b"IDAT", data[i : i + size]) for i in range(0, len(data), size))
    return raw[:8] + head + body + _chunk(b"IEND", b"")


def _full_rendering(source: Path, salt: bytes, name: str) -> tuple[bytes, Rendering]:
    from PIL import Image

    from ml.data.radiograph import read_radiograph

    r = read_radiograph(source)
    low, high = r.value_range
    span = high - low
    scale = LEVELS / span if span > 0 else 0.0
    levels = (high - r.values) if r.invert else (r.values - low)
    grey = np.clip(np.rint(levels * scale), 0, LEVELS).astype(np.uint16)
    slope = (span / LEVELS) * (-1.0 if r.invert else 1.0)
    info = Rendering(
        columns=int(grey.shape[1]),
        rows=int(grey.shape[0]),
        slope=slope,
        intercept=high if r.invert else low,
        window_center=r.window.center,
        window_width=r.window.width,
        pixel_spacing_mm=r.pixel_spacing_mm,
        bits_stored=r.bits_stored,
    )
    return _png(Image.fromarray(grey), salt, name), info


def derived_image(source: Path, kind: Kind, media_dir: Path) -> Path:
    """The `kind` rendering of `source`, made on first use."""
    from PIL import Image

    from ml.data.pixels import read_gray8
    from ml.fileio import atomic_write

    target = derivative_path(source, kind, media_dir)
    if target.is_file():
        return target
    salt = _salt(media_dir)
    if kind.bits == 16:
        data, info = _full_rendering(source, salt, target.name)
        # the sidecar first: a rendering that exists always has its description
        atomic_write(target.with_suffix(".json"), json.dumps(asdict(info)))
        atomic_write(target, data)
        return target
    image = read_gray8(source)
    if kind.longest_side is not None:
        image.thumbnail((kind.longest_side, kind.longest_side), Image.Resampling.LANCZOS)
    atomic_write(target, _png(image, salt, target.name))
    return target


def rendering(source: Path, media_dir: Path) -> Rendering:
    """The description of `source`'s full rendering (made on first use)."""
    target = derived_image(source, FULL, media_dir)
    data = json.loads(target.with_suffix(".json").read_text(encoding="utf-8"))
    spacing = data.pop("pixel_spacing_mm")
    return Rendering(**data, pixel_spacing_mm=tuple(spacing) if spacing else None)
