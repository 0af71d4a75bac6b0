"""The image cache: decoded once in parallel, equal to decoding in RAM, reused while the sources
stand, brought up to date row by row when one changes, whole or absent."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ml.data.cache import MANIFEST, PIXELS, CacheError, decode_gray, open_cache
from ml.data.images import decode_images, load_split
from ml.data.labels import LabelRecord, LabelTable


def write_images(folder: Path, n: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"img{i:03d}.png"
        side = int(rng.integers(40, 90))
        Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_the_cache_equals_decoding_in_ram_in_parallel_or_not(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "src", 150)  # several chunks of 64
    ids = [p.stem for p in paths]
    serial = open_cache(tmp_path / "serial", ids, paths, 32, workers=1)
    parallel = open_cache(tmp_path / "parallel", ids, paths, 32, workers=2)
    assert serial.decoded == parallel.decoded == 150
    ram = decode_images(paths, 32).numpy()
    assert np.array_equal(serial.pixels(), ram) and np.array_equal(parallel.pixels(), ram)
    manifest = json.loads((tmp_path / "parallel" / MANIFEST).read_text())
    assert manifest["image_ids"] == ids and manifest["size"] == 32
    assert [s["path"] for s in manifest["sources"]] == [str(p) for p in paths]
    assert all(len(s["sha256"]) == 64 for s in manifest["sources"])


def test_a_second_open_decodes_nothing_and_a_changed_source_one_row(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "src", 20)
    ids = [p.stem for p in paths]
    cache = tmp_path / "cache"
    assert open_cache(cache, ids, paths, 24).decoded == 20
    assert open_cache(cache, ids, paths, 24).decoded == 0
    os.utime(paths[3], ns=(1, 1))  # touched, same content: hashed, not decoded
    assert open_cache(cache, ids, paths, 24).decoded == 0
    Image.fromarray(np.full((50, 50), 7, dtype=np.uint8)).save(paths[5])  # changed
    again = open_cache(cache, ids, paths, 24)
    assert again.decoded == 1 and np.array_equal(again.pixels()[5], np.full((24, 24), 7))
    assert np.array_equal(again.pixels(), decode_images(paths, 24).numpy())
    assert open_cache(cache, ids, paths, 24).decoded == 0
    # another size, or other images: a new cache
    assert open_cache(cache, ids, paths, 16).decoded == 20
    assert open_cache(cache, ids[:10], paths[:10], 16).decoded == 10


def test_an_unreadable_image_is_named_and_the_old_cache_stays(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "src", 70)  # the broken one in a second chunk
    ids = [p.stem for p in paths]
    cache = tmp_path / "cache"
    before = np.array(open_cache(cache, ids, paths, 16).pixels())
    broken = tmp_path / "src" / "broken.png"
    broken.write_bytes(b"not an image")
    for workers in (1, 2):
        with pytest.raises(
            CacheError, match=r"broken\.png: cannot be decoded into the image cache"
        ):
            open_cache(cache, [*ids, "broken"], [*paths, broken], 16, workers=workers)
        assert np.array_equal(open_cache(cache, ids, paths, 16).pixels(), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "src"]  # no half-built folder
    with pytest.raises(ValueError, match="one file per id"):
        open_cache(cache, ids, paths[:3], 16)


def test_cached_rows_index_as_the_split_tensor_would_and_map_nothing(tmp_path: Path) -> None:
    """What training (rows by index) and inference (slices) read: the decoded pixels, copied
    into tensors of their own; the file is never mapped into the process."""
    paths = write_images(tmp_path / "src", 40)
    cache = open_cache(tmp_path / "cache", [p.stem for p in paths], paths, 20)
    rows, ram = cache.rows(), decode_images(paths, 20)
    assert len(rows) == 40 and rows.shape == (40, 20, 20)
    assert torch.equal(rows[:], ram) and torch.equal(rows[5:17], ram[5:17])
    assert torch.equal(rows[38:99], ram[38:]) and rows[40:].shape == (0, 20, 20)
    assert torch.equal(rows[::3], ram[::3]) and torch.equal(rows[3], ram[3])
    index = torch.tensor([7, 0, 39, 7, -1])
    assert torch.equal(rows[index], ram[index])
    batch = rows[index]
    batch[0] = 0  # a copy: the cache is unchanged
    assert torch.equal(rows[7], ram[7])
    assert rows.to("cpu") is rows
    assert torch.equal(pickle.loads(pickle.dumps(rows))[:], ram)  # noqa: S301 (our own bytes)
    with pytest.raises(IndexError, match="row 40 of 40"):
        rows[torch.tensor([40])]
    assert str(cache.directory / PIXELS) not in Path("/proc/self/maps").read_text()
    with open(cache.directory / PIXELS, "r+b") as f:
        f.truncate(30 * 20 * 20)  # a damaged file: named, never read short
    with pytest.raises(CacheError, match="ends before row 40 of 40"):
        rows[25:]


def test_load_split_reads_the_cache_and_every_run_reuses_it(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "images", 30)
    records = tuple(
        LabelRecord(
            p.stem, p.name, (i % 2, 1 - i % 2), None, "train" if i < 20 else "test", {}, "t", i
        )
        for i, p in enumerate(paths)
    )
    table = LabelTable("plain", ("a", "b"), records)
    plain = load_split(table, tmp_path / "images", "train", 28)
    first = load_split(table, tmp_path / "images", "train", 28, cache_dir=tmp_path / "cache")
    second = load_split(table, tmp_path / "images", "train", 28, cache_dir=tmp_path / "cache")
    assert (plain.decoded, first.decoded, second.decoded) == (None, 20, 0)
    assert torch.equal(plain.images[:], first.images[:])
    assert torch.equal(plain.images[:], second.images[:])
    assert torch.equal(plain.labels, second.labels) and plain.image_ids == second.image_ids
    assert (tmp_path / "cache" / "train-28px" / MANIFEST).is_file()
    test = load_split(table, tmp_path / "images", "test", 28, cache_dir=tmp_path / "cache")
    assert test.decoded == 10 and len(test.image_ids) == 10


def test_dicom_is_cached_as_the_engine_reads_it(shared_data: Path, tmp_path: Path) -> None:
    """The PA chest, uncompressed and as JPEG 2000 (decoded in worker processes)."""
    chest = [shared_data / "dicom" / "RG1_UNCR.dcm", shared_data / "dicom" / "RG1_J2KR.dcm"]
    cache = open_cache(tmp_path / "cache", ["uncompressed", "jpeg2000"], chest, 64, workers=2)
    assert np.array_equal(cache.pixels()[0], decode_gray(chest[0], 64))
    assert np.array_equal(cache.pixels()[0], cache.pixels()[1])  # the same pixels either way
