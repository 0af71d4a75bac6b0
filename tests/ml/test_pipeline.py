"""The PIE engine end to end: synthetic data, training, pruning, predictions, PIEs."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import average_precision_score
from typer.testing import CliRunner

from backend.cli import app as cli
from backend.config import Settings
from ml.config import TrainConfig
from ml.data.images import SplitData
from ml.data.labels import NIH_CXR_LT_CLASSES, patient_leakage, read_labels, require_ok
from ml.data.synth import PAIRS, generate, plan, write_dataset
from ml.pies import find_pies, pie_scores
from ml.pieset_file import parse_pieset_csv
from ml.predict import predict_population
from ml.store import PredictionStore
from ml.train import train_population


def test_synthetic_labels_are_long_tailed_and_co_occur() -> None:
    items = plan(20000, seed=3)
    counts = collections.Counter(f for it in items for f in it.findings)
    assert len(counts) == 19
    assert max(counts.values()) / min(counts.values()) > 100
    n = len(items)
    for given, then, _ in PAIRS[:6]:
        with_given = [it for it in items if given in it.findings]
        p_then_given = sum(then in it.findings for it in with_given) / len(with_given)
        assert p_then_given > 1.5 * counts[then] / n, (given, then)
    # more multi-finding images than independence would give
    multi = sum(len(it.findings) >= 3 for it in items) / n
    assert multi > 0.02


def test_synthetic_images_are_deterministic(tmp_path: Path) -> None:
    a = [img for _, img in generate(4, seed=1, size=64)]
    b = [img for _, img in generate(4, seed=1, size=64)]
    c = [img for _, img in generate(4, seed=2, size=64)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    assert a[0].shape == (64, 64) and a[0].min() >= 0.0 and a[0].max() <= 1.0
    counts = write_dataset(tmp_path, 60, seed=0, size=64)
    assert sum(counts.values()) == 60
    table = require_ok(read_labels("nih-cxr-lt", sorted(tmp_path.glob("*_labels_*.csv"))))
    assert table.classes == NIH_CXR_LT_CLASSES and len(table.records) == 60
    assert not patient_leakage(table.records)
    assert all(sum(r.labels) >= 1 for r in table.records)  # No Finding or findings


def test_large_synthetic_images_keep_their_findings_and_do_not_depend_on_the_workers(
    tmp_path: Path,
) -> None:
    """Above DETAIL_BASE the anatomy is drawn small and resized, the grain at full size: the
    picture is the small one's, in more detail; the processes drawing them change nothing."""
    from ml.data.synth import DETAIL_BASE, render

    big = render({"Effusion"}, np.random.default_rng(5), 512)
    clear = render(set(), np.random.default_rng(5), 512)
    assert big.shape == (512, 512) and big.dtype == np.float32
    assert big.min() >= 0.0 and big.max() <= 1.0
    small = render({"Effusion"}, np.random.default_rng(5), DETAIL_BASE)
    shrunk = np.asarray(
        Image.fromarray(big, mode="F").resize((DETAIL_BASE,) * 2, Image.Resampling.BOX)
    )
    assert np.corrcoef(shrunk.ravel(), small.ravel())[0, 1] > 0.95
    # an effusion fills the costophrenic angles: the lower lung fields are brighter with one
    assert big[300:330, 120:230].mean() > clear[300:330, 120:230].mean() + 0.05
    one, two = tmp_path / "one", tmp_path / "two"
    assert write_dataset(one, 6, seed=3, size=512) == write_dataset(
        two, 6, seed=3, size=512, workers=2
    )
    for f in sorted((one / "images").iterdir()):
        a, b = Image.open(f), Image.open(two / "images" / f.name)
        assert a.size == (512, 512) and np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_small_cnn_learns_the_synthetic_findings(
    synth_splits, synth_population: Path, tmp_path: Path
) -> None:
    # trained once for the test run (tests/ml/conftest.py): seed 0, 6 epochs, lr 1e-3
    store = predict_population(
        synth_population,
        [0],
        synth_splits["test"],
        tmp_path / "store",
        dataset="synthetic",
        device="cpu",
    )
    p, y = np.asarray(store.predictions[0, 0]), np.asarray(store.labels)
    for name in ("No Finding", "Effusion", "Infiltration"):
        c = store.meta.classes.index(name)
        chance = y[:, c].mean()  # the AP of a random ranking
        assert average_precision_score(y[:, c], p[:, c]) > chance + (1 - chance) / 2, name


def head(split: SplitData, n: int) -> SplitData:
    return SplitData(split.image_ids[:n], split.images[:n], split.labels[:n], split.classes)


@pytest.mark.slow
def test_training_is_deterministic_and_resumable(synth_splits, tmp_path: Path) -> None:
    config = TrainConfig(
        model="smallcnn", image_size=64, max_epochs=2, patience=2, lr=1e-3, device="cpu"
    )
    # a part of each split: determinism and resumption do not depend on how many images
    sizes = {"train": 320, "val": 96, "test": 96}
    small = {k: head(v, sizes[k]) for k, v in synth_splits.items()}
    first = train_population(config, [4, 5], small["train"], small["val"], tmp_path / "a")
    second = train_population(config, [4, 5], small["train"], small["val"], tmp_path / "b")
    assert not any(r.skipped for r in first + second)
    for seed in (4, 5):
        sa = torch.load(tmp_path / "a" / f"seed-{seed}" / "model.pt", weights_only=True)
        sb = torch.load(tmp_path / "b" / f"seed-{seed}" / "model.pt", weights_only=True)
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    again = train_population(config, [4, 5, 6], small["train"], small["val"], tmp_path / "a")
    assert [r.skipped for r in again] == [True, True, False]
    stores = [
        predict_population(
            tmp_path / d, [4, 5], small["test"], tmp_path / f"store-{d}", dataset="s", device="cpu"
        )
        for d in ("a", "b")
    ]
    assert np.array_equal(stores[0].predictions, stores[1].predictions)
    pies = [
        find_pies(pie_scores(s.predictions, s.meta.sparsities), s.meta.image_ids) for s in stores
    ]
    assert np.array_equal(pies[0].is_pie, pies[1].is_pie) and np.array_equal(
        pies[0].ranks, pies[1].ranks
    )


@pytest.mark.slow
def test_nih_mini_end_to_end(shared_data: Path, tmp_path: Path, env_settings: Settings) -> None:
    """Real NIH images (64x64): train 3 seeds on CPU, prune at 20 sparsities, store, PIEs, import."""
    mini = shared_data / "nih-cxr14-mini"
    data = ["--format", "chestxray14", "--labels", str(mini / "Data_Entry_2017_subset.csv"),
            "--images", str(mini / "images"), "--split", str(mini / "split.csv")]  # fmt: skip
    runner = CliRunner()
    r = runner.invoke(cli, ["ml", "train", *data, "--out", str(tmp_path / "run"), "--seeds", "0,1,2",
                            "--model", "smallcnn", "--image-size", "64", "--epochs", "3", "--patience", "2",
                            "--lr", "1e-3", "--device", "cpu"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.output.count("best val loss") == 3
    r = runner.invoke(
        cli,
        [
            "ml",
            "prune-predict",
            str(tmp_path / "run"),
            *data,
            "--out",
            str(tmp_path / "store"),
            "--device",
            "cpu",
        ],
    )
    assert r.exit_code == 0, r.output
    store = PredictionStore.open(tmp_path / "store", verify_checksums=True)
    assert store.meta.shape == (3, 20, 210, 15)
    assert (
        store.meta.classes[0] == "No Finding"
        and np.asarray(store.labels)[:, store.meta.classes.index("Hernia")].sum() == 0
    )
    r = runner.invoke(
        cli, ["ml", "pies", str(tmp_path / "store"), "--out", str(tmp_path / "pies.csv")]
    )
    assert r.exit_code == 0, r.output
    rows = parse_pieset_csv((tmp_path / "pies.csv").read_text()).rows
    assert len(rows) == 210 and 9 <= sum(row.is_pie for row in rows) <= 15
    # the pruning analysis of the real population, end to end
    r = runner.invoke(cli, ["ml", "report", str(tmp_path / "store"), "--out", str(tmp_path / "report"),
                            "--train-labels", str(mini / "Data_Entry_2017_subset.csv"), "--format", "chestxray14",
                            "--split", str(mini / "split.csv"), "--run", str(tmp_path / "run")])  # fmt: skip
    assert r.exit_code == 0, r.output
    analysis = json.loads((tmp_path / "report" / "analysis.json").read_text())
    assert analysis["shape"] == {"seeds": 3, "sparsities": 20, "images": 210, "classes": 15}
    hernia = next(c for c in analysis["forgettability"]["classes"] if c["name"] == "Hernia")
    assert (
        hernia["test_count"] == 0 and hernia["value_at_max"] is None
    )  # no test positives: no curve
    assert analysis["weight_histogram"]["counts"]
    assert (tmp_path / "report" / "report.html").stat().st_size > 50_000
    # the PIE set goes straight into a study database
    r = runner.invoke(cli, ["dataset", "import", "--name", "nih-mini", *data])
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        cli,
        [
            "pieset",
            "import",
            "--dataset",
            "nih-mini",
            "--name",
            "smallcnn-k90",
            "--file",
            str(tmp_path / "pies.csv"),
            "--report",
            str(tmp_path / "report"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "210 images" in r.output
    kept = list((env_settings.resolved_media_dir / "reports").glob("*.html"))
    assert len(kept) == 1
    assert kept[0].read_bytes() == (tmp_path / "report" / "report.html").read_bytes()


@pytest.mark.slow
def test_store_carries_a_per_layer_pruning_report(
    synth_splits, synth_population: Path, tmp_path: Path
) -> None:
    import json

    from ml.predict import PRUNING_REPORT, PruningConfig

    predict_population(
        synth_population, [0], synth_splits["test"], tmp_path / "store", dataset="s", device="cpu",
        pruning=PruningConfig(min_keep=0.0005),
    )  # fmt: skip
    report = json.loads((tmp_path / "store" / PRUNING_REPORT).read_text())
    layers = report["0"]["0.95"]
    total = sum(x["weights"] for x in layers)
    assert sum(x["zeros"] for x in layers) == round(0.95 * total)
    assert all(x["zeros"] < x["weights"] for x in layers)  # the per-layer minimum held
    assert all(x["zeros"] == 0 for x in report["0"]["0"])


def test_images_in_any_mode_and_format(tmp_path: Path) -> None:
    from PIL import Image

    from ml.data.images import decode_images, to_model_input

    rgb = np.zeros((40, 30, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb, "RGB").save(tmp_path / "a.jpg", quality=95)
    Image.fromarray(np.full((32, 32), 77, np.uint8), "L").save(tmp_path / "b.png")
    Image.fromarray(np.full((32, 32, 4), 120, np.uint8), "RGBA").save(tmp_path / "c.png")
    out = decode_images([tmp_path / "a.jpg", tmp_path / "b.png", tmp_path / "c.png"], 24)
    assert out.shape == (3, 24, 24) and out.dtype == torch.uint8
    assert int(out[1].float().mean()) == 77
    x = to_model_input(out)
    assert x.shape == (3, 3, 24, 24)
    assert torch.allclose(x[1, 0, 0, 0], torch.tensor((77 / 255 - 0.485) / 0.229), atol=1e-5)


def test_local_pretrained_weights_are_loaded_without_download(tmp_path: Path) -> None:
    from ml.models import create_model

    source = create_model("resnet18", num_classes=1000)
    torch.save(source.state_dict(), tmp_path / "imagenet.pt")
    model = create_model("resnet18", num_classes=20, pretrained_path=tmp_path / "imagenet.pt")
    assert torch.equal(model.state_dict()["conv1.weight"], source.state_dict()["conv1.weight"])
    assert model.state_dict()["fc.weight"].shape == (20, 512)  # the head is new
    with pytest.raises(FileNotFoundError):
        create_model("resnet18", 20, pretrained_path=tmp_path / "missing.pt")


@pytest.mark.slow
def test_a_seed_killed_mid_training_resumes_at_its_epoch(tmp_path: Path) -> None:
    """`ml train` killed with SIGKILL during epoch 2 resumes after epoch 1 and ends exactly as
    an uninterrupted run of the same configuration."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from ml.data.synth import write_dataset

    write_dataset(tmp_path / "data", 700, 0, 64, splits=(0.8, 0.2, 0.0))
    labels = sorted((tmp_path / "data").glob("*_labels_*.csv"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def train(out: Path) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-c", "from backend.cli import app; app()", "ml", "train", "--images", str(tmp_path / "data" / "images"),
                   "--out", str(out), "--seeds", "3", "--image-size", "64", "--epochs", "4", "--patience", "9",
                   "--lr", "1e-3", "--device", "cpu", *(a for f in labels for a in ("--labels", str(f)))]  # fmt: skip
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    killed = train(tmp_path / "killed")
    last = tmp_path / "killed" / "seed-3" / "last.pt"
    deadline = time.monotonic() + 240
    while not last.is_file():
        assert killed.poll() is None, killed.stdout.read().decode() if killed.stdout else ""
        assert time.monotonic() < deadline, "no epoch finished in time"
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert torch.load(last, weights_only=True)["epoch"] == 1  # killed during epoch 2
    assert not (tmp_path / "killed" / "seed-3" / "history.json").exists()
    resumed, whole = train(tmp_path / "killed"), train(tmp_path / "whole")
    outputs = [p.communicate(timeout=300)[0].decode() for p in (resumed, whole)]
    assert resumed.returncode == whole.returncode == 0, outputs
    assert "4 epochs, resumed after epoch 1" in outputs[0] and "resumed" not in outputs[1]
    a = json.loads((tmp_path / "killed" / "seed-3" / "history.json").read_text())
    b = json.loads((tmp_path / "whole" / "seed-3" / "history.json").read_text())
    assert a == b and len(a["epochs"]) == 4
    ma = torch.load(tmp_path / "killed" / "seed-3" / "model.pt", weights_only=True)
    mb = torch.load(tmp_path / "whole" / "seed-3" / "model.pt", weights_only=True)
    assert all(torch.equal(ma[k], mb[k]) for k in mb)
    assert not last.exists()  # a finished seed keeps no training state


def test_batched_augmentation_is_torchvisions_per_image() -> None:
    """Flip and rotation on a whole batch equal torchvision's RandomHorizontalFlip and
    RandomRotation(15) (nearest, zero fill) image by image, for the angles drawn."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as tvf

    from ml.data.augment import augment_batch, rotate_batch

    images = torch.randint(
        0, 256, (32, 48, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    angles = torch.linspace(-15, 15, 32)
    ours = rotate_batch(images, angles)
    for i in range(32):
        ref = tvf.rotate(
            images[i : i + 1], float(angles[i]), interpolation=InterpolationMode.NEAREST
        )[0]
        assert torch.equal(ours[i], ref), float(angles[i])
    out = augment_batch(images, torch.Generator().manual_seed(7))
    draws = torch.Generator().manual_seed(7)
    flip = torch.rand(32, generator=draws) < 0.5
    degrees = (torch.rand(32, generator=draws) * 2 - 1) * 15
    assert 8 < int(flip.sum()) < 24 and float(degrees.abs().max()) <= 15
    for i in range(32):
        source = images[i].flip(-1) if flip[i] else images[i]
        ref = tvf.rotate(source[None], float(degrees[i]), interpolation=InterpolationMode.NEAREST)[
            0
        ]
        assert torch.equal(out[i], ref)
