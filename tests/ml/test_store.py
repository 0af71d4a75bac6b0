from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.reference import ReferenceImportError, import_reference
from ml.store import SPARSITIES, PredictionStore, StoreError, StoreMeta, StoreWriter

CLASSES = ("No Finding", "Effusion", "Hernia")


def meta(n: int = 6, seeds: tuple[int, ...] = (0, 1)) -> StoreMeta:
    return StoreMeta(
        "synthetic",
        CLASSES,
        tuple(f"i{i}" for i in range(n)),
        seeds,
        SPARSITIES,
        {"name": "smallcnn"},
        {"method": "l1"},
        {},
    )


def fill(path: Path, rng: np.random.Generator, n: int = 6) -> tuple[PredictionStore, np.ndarray]:
    labels = rng.integers(0, 2, (n, 3))
    values = rng.random((2, 20, n, 3)).astype(np.float32)
    with StoreWriter(path, meta(n), labels) as w:
        for s in range(2):
            for k in range(20):
                w.write(s, k, values[s, k])
        return w.commit(), values


def test_round_trip_memory_mapped(tmp_path: Path) -> None:
    _, values = fill(tmp_path / "store", np.random.default_rng(0))
    again = PredictionStore.open(tmp_path / "store", verify_checksums=True)
    assert isinstance(again.predictions, np.memmap)
    assert np.array_equal(again.predictions, values)
    assert again.meta.classes == CLASSES and again.meta.shape == (2, 20, 6, 3)
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert (
        set(manifest["checksums"]) == {"predictions.npy", "labels.npy"} and manifest["created_at"]
    )
    assert again.sparsity_index(0.9) == 18
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # no temporary folder left


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError),
        StoreWriter(tmp_path / "store", meta(), np.zeros((6, 3))) as w,
    ):
        w.write(0, 0, np.zeros((6, 3)))
        raise RuntimeError("the run died")
    assert list(tmp_path.iterdir()) == []
    w = StoreWriter(tmp_path / "s2", meta(), np.zeros((6, 3)))
    with pytest.raises(StoreError, match="never written"):
        w.commit()
    w.abort()
    with pytest.raises(StoreError, match="shape"):
        StoreWriter(tmp_path / "s3", meta(), np.zeros((5, 3)))


def test_validation_names_the_problem(tmp_path: Path) -> None:
    fill(tmp_path / "store", np.random.default_rng(1))
    path = tmp_path / "store"
    preds = np.load(path / "predictions.npy", mmap_mode="r+")
    preds[1, 3, 2, 1] = np.nan
    preds.flush()
    del preds
    with pytest.raises(
        StoreError, match="NaN or infinite at seed index 1, sparsity index 3, image 2, class 1"
    ):
        PredictionStore.open(path)
    preds = np.load(path / "predictions.npy", mmap_mode="r+")
    preds[1, 3, 2, 1] = 1.5
    preds.flush()
    del preds
    with pytest.raises(StoreError, match=r"probabilities in \[0, 1\]"):
        PredictionStore.open(path)
    with pytest.raises(StoreError, match="checksum"):
        PredictionStore.open(path, verify_checksums=True)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["classes"] = manifest["classes"][:2]
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="shape"):
        PredictionStore.open(path)
    (path / "manifest.json").write_text("{broken")
    with pytest.raises(StoreError, match="not valid JSON"):
        PredictionStore.open(path)
    with pytest.raises(StoreError, match=r"no manifest\.json"):
        PredictionStore.open(tmp_path)


def write_reference(
    directory: Path,
    rng: np.random.Generator,
    n: int = 8,
    seeds: tuple[int, ...] = (0, 1),
    ks: tuple[float, ...] = SPARSITIES,
) -> np.ndarray:
    directory.mkdir(parents=True, exist_ok=True)
    truth = rng.integers(0, 2, (n, 3))
    label = ["|".join(c for c, v in zip(CLASSES, row, strict=True) if v) for row in truth]
    values = rng.random((len(seeds), len(ks), n, 3))
    for si, s in enumerate(seeds):
        for ki, k in enumerate(ks):
            frame = pd.DataFrame(values[si, ki], columns=list(CLASSES))
            frame["label"] = label
            name = "0" if k == 0 else f"{k:g}"
            frame.to_pickle(directory / f"nih-cxr-lt_resnet50_seed-{s}_prune-{name}.pkl")
    return values


def test_import_reference_with_label_csv(tmp_path: Path) -> None:
    values = write_reference(tmp_path / "ref", np.random.default_rng(2))
    csv_path = tmp_path / "miccai2023_nih-cxr-lt_labels_test.csv"
    csv_path.write_text(
        "id,subj_id,No Finding\n" + "".join(f"img{i}.png,{i},0\n" for i in range(8))
    )
    result = import_reference(tmp_path / "ref", tmp_path / "store", labels_csv=csv_path)
    store = result.store
    assert result.files == 40 and not result.used_row_numbers
    assert store.meta.image_ids[0] == "img0.png" and store.meta.seeds == (0, 1)
    assert store.meta.sparsities == SPARSITIES
    assert np.allclose(store.predictions, values.astype(np.float32))


def test_import_reference_without_ids_and_bad_input(tmp_path: Path) -> None:
    write_reference(tmp_path / "ref", np.random.default_rng(3))
    result = import_reference(tmp_path / "ref", tmp_path / "store")
    assert result.used_row_numbers and result.store.meta.image_ids[0] == "row-000000"
    (tmp_path / "ref" / "nih-cxr-lt_resnet50_seed-1_prune-0.5.pkl").unlink()
    with pytest.raises(ReferenceImportError, match=r"seed 1 at 0\.5"):
        import_reference(tmp_path / "ref", tmp_path / "store2")
    (tmp_path / "ref" / "nih-cxr-lt_resnet50_seed-1_prune-0.5.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ReferenceImportError, match="cannot be read"):
        import_reference(tmp_path / "ref", tmp_path / "store2")
    assert not (tmp_path / "store2").exists()
    short = tmp_path / "short.csv"
    short.write_text("id\na\nb\n")
    write_reference(tmp_path / "ok", np.random.default_rng(4))
    with pytest.raises(ReferenceImportError, match="2 rows but the pickles have 8"):
        import_reference(tmp_path / "ok", tmp_path / "store3", labels_csv=short)
    with pytest.raises(ReferenceImportError, match="no files named like"):
        import_reference(tmp_path, tmp_path / "store4")


def test_cli_import_reference_then_pies(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from backend.cli import app as cli
    from ml.pieset_file import parse_pieset_csv

    values = write_reference(tmp_path / "ref", np.random.default_rng(5), n=40)
    runner = CliRunner()
    r = runner.invoke(
        cli, ["ml", "import-reference", str(tmp_path / "ref"), "--out", str(tmp_path / "store")]
    )
    assert r.exit_code == 0, r.output
    assert "unpickling" in r.output and "row number" in r.output and "40 files" in r.output
    r = runner.invoke(
        cli,
        [
            "ml",
            "pies",
            str(tmp_path / "store"),
            "--out",
            str(tmp_path / "pies.csv"),
            "--percentile",
            "10",
        ],
    )
    assert r.exit_code == 0, r.output
    parsed = parse_pieset_csv((tmp_path / "pies.csv").read_text())
    assert not parsed.problems and len(parsed.rows) == 40
    # independently: pandas Spearman of the seed means, PIE = at or below the 10th percentile
    dense = pd.DataFrame(values[:, 0].mean(axis=0))
    pruned = pd.DataFrame(values[:, SPARSITIES.index(0.9)].mean(axis=0))
    rho = dense.corrwith(pruned, axis=1, method="spearman").to_numpy()
    expected = {f"row-{i:06d}" for i in np.flatnonzero(rho <= np.percentile(rho, 10))}
    assert {row.image for row in parsed.rows if row.is_pie} == expected
    bad = runner.invoke(cli, ["ml", "pies", str(tmp_path), "--out", str(tmp_path / "x.csv")])
    assert bad.exit_code == 2 and "no manifest.json" in bad.output
