"""The images people are shown: derivatives of a dataset's files, never the files themselves.

Display copies (what a reader sees first) and thumbnails (what a researcher browses) are made
here and nowhere else: decoded as the engine decodes them (ml.data.pixels), scaled down, written
as PNG without any of the source's metadata, made once and kept under the media folder. The name
of a derivative comes from the source's path, size and modification time, so a changed source
gets a new derivative, and says nothing about the image to whoever receives it.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Kind:
    folder: str
    longest_side: int


DISPLAY = Kind("display", 1024)  # longest side of the copy a reader sees first
THUMBNAIL = Kind("thumbs", 160)


def derivative_path(source: Path, kind: Kind, media_dir: Path) -> Path:
    stat = source.stat()
    key = f"{source.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\0{kind.longest_side}"
    name = hashlib.sha256(key.encode()).hexdigest()[:32]
    return media_dir / kind.folder / f"{name}.png"


def derived_image(source: Path, kind: Kind, media_dir: Path) -> Path:
    """The `kind` derivative of `source` (an 8-bit grayscale PNG), made on first use."""
    from PIL import Image

    from ml.data.pixels import read_gray8
    from ml.fileio import atomic_write

    target = derivative_path(source, kind, media_dir)
    if target.is_file():
        return target
    image = read_gray8(source)
    image.thumbnail((kind.longest_side, kind.longest_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # a fresh image: no text chunks, no EXIF, nothing carried
    atomic_write(target, buffer.getvalue())
    return target
