"""The regeneration pipeline on its own: the Ray executor yields what the local one does."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ml.data.labels import read_labels, require_ok
from ml.data.synth import write_dataset
from ml.executors import RayExecutor
from ml.regenerate import DatasetInputs, regenerate
from ml.runparams import RunParams
from ml.store import PredictionStore
from tests.dbutil import need


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.stages: list[tuple[str, float]] = []

    def stage(self, name: str, fraction: float) -> None:
        self.stages.append((name, fraction))

    def log(self, line: str) -> None:
        self.lines.append(line)

    def check(self) -> None:
        pass


@pytest.fixture(scope="module")
def synth_inputs(tmp_path_factory: pytest.TempPathFactory) -> DatasetInputs:
    out = tmp_path_factory.mktemp("synth")
    write_dataset(out, 240, 0, 32)
    table = require_ok(read_labels("nih-cxr-lt", sorted(out.glob("*_labels_*.csv"))))
    return DatasetInputs("synth", table.classes, out / "images", table.records)


@pytest.mark.slow
def test_ray_executor_yields_the_same_pie_set_as_the_local_one(
    synth_inputs: DatasetInputs, tmp_path: Path
) -> None:
    if importlib.util.find_spec("ray") is None:
        need("Ray is not installed (uv sync --all-extras)")
    params = RunParams(seeds=(0, 1), image_size=32, epochs=2, threads=1)
    local_ctx, ray_ctx = Recorder(), Recorder()
    local = regenerate(params, synth_inputs, tmp_path / "local", local_ctx)
    on_ray = regenerate(
        params, synth_inputs, tmp_path / "ray", ray_ctx, executor=RayExecutor(num_cpus=2)
    )
    assert any("ray: 2 seed task(s) submitted" in line for line in ray_ctx.lines)
    assert on_ray.pieset_csv == local.pieset_csv
    a, b = PredictionStore.open(local.store_path), PredictionStore.open(on_ray.store_path)
    assert np.array_equal(np.asarray(a.predictions), np.asarray(b.predictions))
    assert local.summary["pies"] > 0
    fractions = [f for _, f in local_ctx.stages]
    assert fractions == sorted(fractions) and fractions[-1] < 1


def test_bad_parameters_are_named(synth_inputs: DatasetInputs, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="k_star") as e:
        regenerate(RunParams(k_star=0.42, epochs=0), synth_inputs, tmp_path, Recorder())
    assert "epochs" in str(e.value)
    with pytest.raises(ValueError, match="outside the folders"):
        regenerate(
            RunParams(source="store", store_path="/etc"), synth_inputs, tmp_path, Recorder(),
            allowed_roots=[tmp_path],
        )  # fmt: skip
    with pytest.raises(ValueError, match="unknown parameter"):
        RunParams.from_dict({"seed": 3})


def test_a_run_starts_its_backbones_from_local_weights(
    synth_inputs: DatasetInputs, tmp_path: Path
) -> None:
    """`pretrained` in a run: the file is checked against the readable folders before anything
    is decoded, and each seed's history says what the file gave."""
    import json

    import torch

    from ml.models import create_model

    weights = tmp_path / "imports" / "imagenet.pt"
    weights.parent.mkdir()
    torch.save(create_model("smallcnn", num_classes=1000).state_dict(), weights)
    params = RunParams(seeds=(0,), image_size=32, epochs=1, pretrained=str(weights))
    ctx = Recorder()
    result = regenerate(
        params, synth_inputs, tmp_path / "work", ctx, allowed_roots=[weights.parent]
    )
    history = json.loads((tmp_path / "work" / "population" / "seed-0" / "history.json").read_text())
    assert (
        history["pretrained"].startswith("imagenet.pt: loaded ")
        and "skipped 2" in history["pretrained"]
    )
    assert any(str(weights) in line for line in ctx.lines) and result.summary["pies"] > 0
    with pytest.raises(ValueError, match=r"pretrained: .* is outside the folders"):
        regenerate(
            params,
            synth_inputs,
            tmp_path / "w2",
            Recorder(),
            allowed_roots=[tmp_path / "elsewhere"],
        )
    missing = RunParams(
        seeds=(0,), image_size=32, epochs=1, pretrained=str(weights.parent / "none.pt")
    )
    with pytest.raises(ValueError, match=r"none\.pt is not a file"):
        regenerate(
            missing, synth_inputs, tmp_path / "w3", Recorder(), allowed_roots=[weights.parent]
        )
    assert not (tmp_path / "w2" / "population").exists()


def test_an_interrupted_run_resumes_its_seed_after_its_last_epoch(
    synth_inputs: DatasetInputs, tmp_path: Path
) -> None:
    """A run stopped in the middle of a seed's second epoch resumes that seed after epoch 1
    (its training state is in the run's folder) and ends as an uninterrupted run."""
    import torch

    params = RunParams(seeds=(0,), image_size=32, epochs=3, patience=9)
    last = tmp_path / "run" / "training" / "seed-0" / "last.pt"

    class StoppedError(Exception):
        pass

    class StopInEpochTwo(Recorder):
        def check(self) -> None:
            if last.is_file():
                raise StoppedError

    with pytest.raises(StoppedError):
        regenerate(params, synth_inputs, tmp_path / "run", StopInEpochTwo())
    assert torch.load(last, weights_only=True)["epoch"] == 1
    ctx = Recorder()
    resumed = regenerate(params, synth_inputs, tmp_path / "run", ctx)
    assert any("training resumed after epoch 1" in line for line in ctx.lines), ctx.lines
    whole = regenerate(params, synth_inputs, tmp_path / "whole", Recorder())
    assert resumed.pieset_csv == whole.pieset_csv
    a, b = PredictionStore.open(resumed.store_path), PredictionStore.open(whole.store_path)
    assert np.array_equal(np.asarray(a.predictions), np.asarray(b.predictions))
    assert not last.parent.exists()  # the finished seed's files are the population's now


def test_runs_of_a_dataset_share_its_image_cache(
    synth_inputs: DatasetInputs, tmp_path: Path
) -> None:
    """The first run decodes every image into the dataset's cache; the next decodes none, and
    gives the same PIE set as a run that decodes in RAM."""
    from dataclasses import replace

    cached = replace(synth_inputs, cache_dir=tmp_path / "cache")
    params = RunParams(seeds=(0,), image_size=32, epochs=1)
    first, second = Recorder(), Recorder()
    a = regenerate(params, cached, tmp_path / "a", first)
    b = regenerate(params, cached, tmp_path / "b", second)
    plain = regenerate(params, synth_inputs, tmp_path / "plain", Recorder())
    assert any(
        f"image cache: {len(synth_inputs.records)} decoded" in line for line in first.lines
    ), first.lines
    assert any("image cache: 0 decoded" in line for line in second.lines), second.lines
    assert a.pieset_csv == b.pieset_csv == plain.pieset_csv
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        "test-32px",
        "train-32px",
        "val-32px",
    ]
