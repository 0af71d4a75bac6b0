"""The image cache: each (dataset split, size) decoded once, into a memory-mapped uint8 file.

A cache folder holds ``images.u8`` (N x size x size bytes, row i the i-th image, decoded as the
engine decodes: ml.data.pixels.read_gray8, then a bilinear resize) and ``manifest.json`` (the
image ids in row order, the size, and for each source file its path, byte count, modification
time and sha256). Opening the cache again decodes nothing while the sources are unchanged: a
source whose size or modification time changed is hashed, and only a source whose content
changed is decoded again, into its row. Other image ids (or another size) build a new cache.

Decoding runs in `workers` processes over the cores, each writing its rows into the file. A new
cache is built in a temporary folder and renamed into place, so a cache is whole or absent; a
file that cannot be read stops the build with its name and the reason, and the old cache stays.
Training and inference read the rows they need (CachedRows: a read of those bytes into a fresh
buffer), never a split in RAM: a process's memory grows with its batch, not with the split, as
no page of the file stays mapped into it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image

from ml.data.pixels import read_gray8

VERSION = 1
MANIFEST = "manifest.json"
PIXELS = "images.u8"
CHUNK = 64  # images per task


class CacheError(ValueError):
    """An image that cannot be decoded into the cache: its file and the reason."""


def decode_gray(path: Path, size: int) -> npt.NDArray[np.uint8]:
    """One image as the engine reads it: 8-bit grayscale, resized to size x size (bilinear)."""
    gray = read_gray8(path)
    if gray.size != (size, size):
        gray = gray.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(gray, dtype=np.uint8)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _source(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {
        "path": str(path),
        "bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256": _sha256(path),
    }


def _decode_rows(
    pixels: str, count: int, size: int, rows: list[tuple[int, str]]
) -> list[dict[str, Any]]:
    """A worker's task: decode `rows` (row, path) into the file; their sources' records."""
    out = np.memmap(pixels, dtype=np.uint8, mode="r+", shape=(count, size, size))
    records = []
    for row, name in rows:
        path = Path(name)
        try:
            out[row] = decode_gray(path, size)
        except Exception as exc:  # named, whatever the decoder raised
            raise CacheError(f"{path}: cannot be decoded into the image cache: {exc}") from exc
        records.append(_source(path))
    out.flush()
    return records


@dataclass(frozen=True)
class ImageCache:
    directory: Path
    image_ids: tuple[str, ...]
    size: int
    decoded: int  # images decoded when this cache was opened (0: every row reused)

    def rows(self) -> CachedRows:
        """The rows, read on demand: what training and inference index."""
        return CachedRows(self.directory / PIXELS, len(self.image_ids), self.size)

    def pixels(self) -> npt.NDArray[np.uint8]:
        """The rows, memory-mapped read-only: [N, size, size] uint8."""
        return np.memmap(
            self.directory / PIXELS,
            dtype=np.uint8,
            mode="r",
            shape=(len(self.image_ids), self.size, self.size),
        )


class CachedRows:
    """A cache file's rows as the engine indexes a split's images: `rows[a:b]` and
    `rows[index_tensor]` give uint8 [n, size, size] tensors of their own, read from the file
    (os.pread: the bytes are copied, no page stays mapped into this process), `len(rows)` the
    number of images, and `rows.to(device)` the whole split on an accelerator (read in chunks)
    or the rows themselves on the CPU. Safe to fork and to pickle (the file is reopened)."""

    def __init__(self, path: Path, count: int, size: int):
        self.path, self.count, self.size = path, count, size
        self._fd: int | None = None
        self._pid = 0

    def __len__(self) -> int:
        return self.count

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.count, self.size, self.size)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "count": self.count, "size": self.size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["count"], state["size"])  # type: ignore[misc]

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def _read(self, first: int, count: int, into: npt.NDArray[np.uint8]) -> None:
        row = self.size * self.size
        view, fd = into.reshape(-1).data, self._file()
        done = 0
        while done < count * row:  # pread may return less than asked
            got = os.preadv(fd, [view[done:]], first * row + done)
            if got == 0:
                raise CacheError(f"{self.path}: ends before row {first + count} of {self.count}")
            done += got

    def __getitem__(self, key: slice | torch.Tensor | int) -> torch.Tensor:
        if isinstance(key, int):
            return self[key : key + 1][0] if key >= 0 else self[self.count + key]
        if isinstance(key, slice):
            first, stop, step = key.indices(self.count)
            if step != 1:
                return self[torch.arange(first, stop, step)]
            out = np.empty((max(stop - first, 0), self.size, self.size), dtype=np.uint8)
            if len(out):
                self._read(first, len(out), out)
            return torch.from_numpy(out)
        index = key.reshape(-1).tolist()
        out = np.empty((len(index), self.size, self.size), dtype=np.uint8)
        for i, row in enumerate(index):
            if not -self.count <= row < self.count:
                raise IndexError(f"row {row} of {self.count} images")
            self._read(row % self.count, 1, out[i : i + 1])
        return torch.from_numpy(out)

    def to(self, device: torch.device | str) -> torch.Tensor | CachedRows:
        device = torch.device(device)
        if device.type == "cpu":
            return self
        out = torch.empty(self.shape, dtype=torch.uint8, device=device)
        for first in range(0, self.count, 1024):
            out[first : first + 1024] = self[first : first + 1024].to(device)
        return out


def _decode(
    pixels: Path, count: int, size: int, rows: list[tuple[int, Path]], workers: int,
    progress: Callable[[int], None] | None,
) -> dict[int, dict[str, Any]]:  # fmt: skip
    chunks = [[(r, str(p)) for r, p in rows[i : i + CHUNK]] for i in range(0, len(rows), CHUNK)]
    found: dict[int, dict[str, Any]] = {}
    if workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            for (row, _), record in zip(
                chunk, _decode_rows(str(pixels), count, size, chunk), strict=True
            ):
                found[row] = record
            if progress:
                progress(len(chunk))
        return found
    # fork where there is one (Linux, as torch's DataLoader workers): a spawned worker would
    # import the caller's modules again (torch among them) before decoding anything
    method = "fork" if "fork" in get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=get_context(method)) as pool:
        futures = [pool.submit(_decode_rows, str(pixels), count, size, chunk) for chunk in chunks]
        for chunk, future in zip(chunks, futures, strict=True):
            for (row, _), record in zip(chunk, future.result(), strict=True):
                found[row] = record
            if progress:
                progress(len(chunk))
    return found


def _write_manifest(
    directory: Path, ids: Sequence[str], size: int, sources: list[dict[str, Any]]
) -> None:
    tmp = directory / f"{MANIFEST}.tmp"
    tmp.write_text(
        json.dumps({"version": VERSION, "size": size, "image_ids": list(ids), "sources": sources})
    )
    os.replace(tmp, directory / MANIFEST)


def open_cache(
    directory: Path, image_ids: Sequence[str], paths: Sequence[Path], size: int, *,
    workers: int | None = None, progress: Callable[[int], None] | None = None,
) -> ImageCache:  # fmt: skip
    """The cache of these images at `size` in `directory`, built or brought up to date."""
    if len(image_ids) != len(paths) or not image_ids:
        raise ValueError(
            f"{len(image_ids)} image ids for {len(paths)} files: need one file per id, and one at least"
        )
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    workers = workers or os.cpu_count() or 1
    ids = tuple(image_ids)
    manifest = _read_manifest(directory)
    if manifest and manifest["size"] == size and tuple(manifest["image_ids"]) == ids:
        sources: list[dict[str, Any]] = manifest["sources"]
        stale = []
        for row, path in enumerate(paths):
            known = sources[row]
            stat = path.stat()
            if known["path"] == str(path) and (stat.st_size, stat.st_mtime_ns) == (
                known["bytes"],
                known["mtime_ns"],
            ):
                continue
            record = _source(path)
            if record["sha256"] == known["sha256"]:
                sources[row] = record  # touched, not changed
            else:
                stale.append((row, path))
        found = _decode(directory / PIXELS, len(ids), size, stale, workers, progress)
        for row, record in found.items():
            sources[row] = record
        _write_manifest(directory, ids, size, sources)
        return ImageCache(directory, ids, size, len(stale))
    building = directory.with_name(f"{directory.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    try:
        pixels = building / PIXELS
        with pixels.open("wb") as f:
            f.truncate(len(ids) * size * size)
        found = _decode(pixels, len(ids), size, list(enumerate(paths)), workers, progress)
        _write_manifest(building, ids, size, [found[row] for row in range(len(ids))])
        shutil.rmtree(directory, ignore_errors=True)
        os.replace(building, directory)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return ImageCache(directory, ids, size, len(ids))


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        manifest: dict[str, Any] = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    pixels = directory / PIXELS
    expected = len(manifest.get("image_ids", ())) * int(manifest.get("size", 0)) ** 2
    whole = (
        pixels.is_file()
        and pixels.stat().st_size == expected
        and manifest.get("version") == VERSION
    )
    return manifest if whole else None
