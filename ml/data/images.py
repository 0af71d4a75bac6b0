"""Images for training and inference: decoded once into a uint8 tensor, then transformed.

The paper's transforms: resize (256 by default; a parameter), random horizontal flip and
±15° rotation for training (on whole batches: ml.data.augment), ImageNet normalisation. Grayscale and RGB PNG/JPEG are read as
grayscale and repeated to three channels (ImageNet backbones take three).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ml.data.cache import CachedRows, decode_gray, open_cache
from ml.data.labels import LabelTable, resolve_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def decode_images(
    paths: Sequence[Path], size: int, progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> torch.Tensor:  # fmt: skip
    """uint8 [N, size, size] grayscale, each image resized once, in `workers` threads (the
    machine's cores by default: decoding and resizing release the GIL)."""
    out = torch.empty((len(paths), size, size), dtype=torch.uint8)

    def one(path: Path) -> np.ndarray:
        return decode_gray(path, size)

    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        for i, pixels in enumerate(pool.map(one, paths)):
            out[i] = torch.from_numpy(pixels.copy())
            if progress:
                progress(1)
    return out


def to_model_input(batch: torch.Tensor) -> torch.Tensor:
    """uint8 [B, H, W] -> normalized float [B, 3, H, W], on the batch's own device."""
    x = batch.float().div_(255.0)
    out = torch.empty((x.shape[0], 3, *x.shape[1:]), dtype=x.dtype, device=x.device)
    for c, (mean, std) in enumerate(zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)):
        # each channel written in place: 16 bytes a pixel at the peak, not 28
        torch.sub(x, mean, out=out[:, c]).div_(std)
    return out


@dataclass(frozen=True)
class SplitData:
    """One split of a labelled dataset, decoded."""

    image_ids: tuple[str, ...]
    images: torch.Tensor | CachedRows  # uint8 [N, H, W]; read from the image cache's file by row
    labels: torch.Tensor  # float32 [N, C]
    classes: tuple[str, ...]
    decoded: int | None = None  # with a cache: the images decoded to open it (0: all reused)


def load_split(
    table: LabelTable, image_dir: Path, split: str | None, size: int,
    progress: Callable[[int], None] | None = None, cache_dir: Path | None = None,
) -> SplitData:  # fmt: skip
    """The records of one split (all records when split is None), decoded at `size`; with
    `cache_dir`, through the image cache there (ml.data.cache: decoded once for every run,
    read row by row from its file, never the split in RAM)."""
    records = [r for r in table.records if split is None or r.split == split]
    if not records:
        raise ValueError(f"no images in split {split!r}")
    paths = []
    for r in records:
        path = resolve_image(image_dir, r.path)
        if path is None or not path.is_file():
            raise FileNotFoundError(f"image {r.path!r} not found in {image_dir}")
        paths.append(path)
    labels = torch.tensor([r.labels for r in records], dtype=torch.float32)
    ids = tuple(r.external_id for r in records)
    if cache_dir is None:
        return SplitData(ids, decode_images(paths, size, progress), labels, table.classes)
    cache = open_cache(
        cache_dir / f"{split or 'all'}-{size}px", ids, paths, size, progress=progress
    )
    return SplitData(ids, cache.rows(), labels, table.classes, cache.decoded)
