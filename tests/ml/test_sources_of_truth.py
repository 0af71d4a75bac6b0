"""The things written once: model names, the atomic write, the file digest, the rank rule, the
8-bit decoding of wide images, and what loading pretrained weights reports."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ml.data.pixels import read_gray8
from ml.fileio import atomic_output, atomic_write, sha256_file
from ml.models import create_model, list_models
from ml.models.names import MODEL_NAMES
from ml.models.registry import load_backbone
from ml.pies import PieScores, find_pies
from ml.pieset_file import parse_pieset_csv, score_ranks

ROOT = Path(__file__).resolve().parents[2]


def test_the_model_names_are_the_registry_s() -> None:
    assert sorted(MODEL_NAMES) == list_models()


def test_names_and_run_parameters_import_without_torch() -> None:
    code = (
        "import sys, ml.models.names, ml.runparams, ml.executors, backend.runs.schemas; "
        "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_atomic_write_serves_text_and_bytes_and_leaves_nothing_half_written(
    tmp_path: Path,
) -> None:
    target = tmp_path / "deep" / "file.txt"
    atomic_write(target, "héllo")
    assert target.read_text(encoding="utf-8") == "héllo"
    atomic_write(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("the writer failed midway")
    assert target.read_bytes() == b"\x00\x01"  # the old file, whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.txt"]  # no temporary left


def test_sha256_file_equals_hashlib_on_files_larger_than_its_block(tmp_path: Path) -> None:
    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_one_rank_rule_for_written_and_imported_pie_sets() -> None:
    images = ["c", "a", "b", "d", "e"]
    scores = [0.5, 0.5, -0.2, float("nan"), 0.1]
    assert score_ranks(images, scores) == [4, 3, 1, None, 2]  # ties by image id; NaN unranked
    found = find_pies(PieScores(np.array(scores), 0.9), images, percentile=50.0)
    assert [int(r) or None for r in found.ranks] == score_ranks(images, scores)
    csv = "image,is_pie,score\n" + "".join(
        f"{i},0,{'' if math.isnan(s) else s}\n" for i, s in zip(images, scores, strict=True)
    )
    parsed = parse_pieset_csv(csv, "x.csv")
    assert [r.rank for r in parsed.rows] == score_ranks(images, scores)


def test_wide_images_are_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.linspace(1000, 4000, 64 * 64).reshape(64, 64).astype(np.uint16)  # 12-bit range
    Image.fromarray(values).save(tmp_path / "wide.png")
    gray = np.asarray(read_gray8(tmp_path / "wide.png"))
    assert gray.dtype == np.uint8 and gray.min() == 0 and gray.max() == 255
    assert np.all(np.diff(gray.ravel().astype(int)) >= 0)  # order kept, nothing saturated
    assert len(np.unique(gray)) > 200
    Image.fromarray(np.full((8, 8), 77, np.uint8)).save(tmp_path / "eight.png")
    assert np.all(np.asarray(read_gray8(tmp_path / "eight.png")) == 77)


def test_load_backbone_reports_what_it_skipped(tmp_path: Path) -> None:
    source = create_model("resnet18", num_classes=1000).state_dict()
    source["extra.weight"] = torch.zeros(3)
    torch.save(source, tmp_path / "imagenet.pt")
    model = create_model("resnet18", num_classes=20)
    loaded = load_backbone(model, tmp_path / "imagenet.pt")
    assert loaded.skipped == {
        "fc.weight": "shape (1000, 512), the model's is (20, 512)",
        "fc.bias": "shape (1000,), the model's is (20,)",
        "extra.weight": "not in this model",
    }
    assert set(loaded.missing) == {"fc.weight", "fc.bias"}
    assert len(loaded.loaded) == len(model.state_dict()) - 2
    said: list[str] = []
    create_model("resnet18", 20, pretrained_path=tmp_path / "imagenet.pt", say=said.append)
    assert (
        len(said) == 1 and "skipped 3" in said[0] and "extra.weight (not in this model)" in said[0]
    )
