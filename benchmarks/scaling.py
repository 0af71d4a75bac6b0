"""The engine's stages at 1k, 5k and 20k images, and what they come to at the paper's scale.

Each stage runs in a fresh process at 256 px (the paper's size), timed, with its peak RSS read
from the kernel:
- decode: the images decoded into RAM as every run did before the cache (threads);
- cache: the image cache built (processes over the cores), and opened again (0 decoded);
- train epoch: one epoch of the engine's training data path (gather_batch from the cache's rows,
  train_step: batched flip and rotation, normalisation, Adam), with a one-convolution model so
  that the figure is the data path's, batch 64;
- predict: one seed at the 20 sparsities (predict_seed: pruning, the cache's rows), the same
  model, batch 128;
- PIEs and analysis: a synthetic store of S=30, K=20, C=20 (pie_scores + find_pies; the whole
  analysis).
The model's own cost is measured once: ResNet-50's training step and inference per image on
this CPU (batch 8). The sources are the three 1024-px NIH PNGs in ../shared/data, listed many
times, so every decode is a real one.

Extrapolation: each stage's time and memory are fitted as a + b*N over the three sizes; a
seed's training epoch adds N_train x ResNet-50's step, its prediction 20 x N_test x its
inference. With `--gpu FILE` (benchmarks/gpu.py's JSON) the model's cost is the GPU's images/s
instead, and a Ray cluster of G such GPUs runs ceil(S/G) rounds of seeds.

    uv run python benchmarks/scaling.py > scaling.json     # about 10 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import full_size_sources, in_child  # noqa: E402

SIZE, CLASSES, SEEDS, K = 256, 20, 30, 20
# the paper's datasets (70/10/20 at the patient level): all images, train, test
DATASETS = {"NIH-CXR-LT": (112_120, 78_484, 22_424), "MIMIC-CXR-LT": (257_018, 179_913, 51_403)}
STAGES = ("decode", "cache", "cache again", "train epoch", "predict", "pies", "analysis")


def _tiny_model() -> Any:
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(3, 8, 16, stride=16), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, CLASSES),
    )  # fmt: skip


def _split(cache: Path, n: int) -> Any:
    import torch

    from ml.data.cache import PIXELS, CachedRows
    from ml.data.images import SplitData

    labels = (torch.rand(n, CLASSES, generator=torch.Generator().manual_seed(0)) < 0.1).float()
    rows = CachedRows(cache / PIXELS, n, SIZE)
    return SplitData(tuple(map(str, range(n))), rows, labels, tuple(map(str, range(CLASSES))))


def child(stage: str, n: int, where: Path, sources: list[Path]) -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    paths = [sources[i % len(sources)] for i in range(n)]
    ids = [f"img{i:06d}" for i in range(n)]
    if stage == "decode":
        from ml.data.images import decode_images

        decode_images(paths, SIZE)
        return {}
    if stage in ("cache", "cache again"):
        from ml.data.cache import open_cache

        return {"decoded": open_cache(where, ids, paths, SIZE).decoded}
    if stage == "train epoch":
        from torch import nn

        from ml.train import gather_batch, train_step

        data, model, generator = _split(where, n), _tiny_model(), torch.Generator().manual_seed(0)
        optimizer, loss_fn = torch.optim.Adam(model.parameters(), lr=1e-4), nn.BCEWithLogitsLoss()
        order = torch.randperm(n, generator=generator)
        for first in range(0, n, 64):
            x, y = gather_batch(data, order[first : first + 64], torch.device("cpu"))
            train_step(model, optimizer, loss_fn, x, y, generator)
        return {}
    if stage == "predict":
        from ml.predict import PruningConfig, predict_seed

        out, _ = predict_seed(
            _tiny_model(), 0, _split(where, n), PruningConfig(), 128, torch.device("cpu")
        )
        return {"shape": list(out.shape)}
    from ml.store import PredictionStore

    store = PredictionStore.open(where)
    if stage == "pies":
        from ml.pies import find_pies, pie_scores

        found = find_pies(
            pie_scores(store.predictions, store.meta.sparsities), store.meta.image_ids
        )
        return {"pies": int(found.is_pie.sum())}
    from ml.analysis.report import analyze
    from ml.analysis.synthetic import train_counts_for

    analyze(store, train_counts_for(store))
    return {}


def model_cost() -> dict[str, float]:
    """ResNet-50 at 256 px on this CPU: seconds per image of a training step and of inference."""
    import torch
    from torch import nn

    from ml.models import create_model

    model, batch = create_model("resnet50", CLASSES), 8
    x, y = torch.randn(batch, 3, SIZE, SIZE), torch.zeros(batch, CLASSES)
    optimizer, loss_fn = torch.optim.Adam(model.parameters(), lr=1e-4), nn.BCEWithLogitsLoss()
    times = {}
    for what in ("train", "infer"):
        model.train(what == "train")
        for i in range(3):  # the first warms up
            t = time.perf_counter()
            if what == "train":
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()
            else:
                with torch.no_grad():
                    model(x)
            times[what] = (time.perf_counter() - t) / batch if i else 0.0
    return {
        "resnet50_train_s_per_image": times["train"],
        "resnet50_infer_s_per_image": times["infer"],
    }


def fit(ns: list[int], ys: list[float]) -> tuple[float, float]:
    """Least squares a + b*N; a figure that does not grow with N (b < 0 within the noise) is
    its largest measurement, one that the fit would start below 0 grows from 0."""
    mean_n, mean_y = sum(ns) / len(ns), sum(ys) / len(ys)
    b = sum((n - mean_n) * (y - mean_y) for n, y in zip(ns, ys, strict=True)) / sum(
        (n - mean_n) ** 2 for n in ns
    )
    if b <= 0:
        return max(ys), 0.0
    a = mean_y - b * mean_n
    return (a, b) if a >= 0 else (0.0, ys[-1] / ns[-1])


def extrapolate(measured: list[dict[str, Any]], model: dict[str, float], epochs: int,
                gpu: dict[str, Any] | None, gpus: int) -> dict[str, Any]:  # fmt: skip
    ns = sorted({m["images"] for m in measured})
    out: dict[str, Any] = {}
    for name, (n_all, n_train, n_test) in DATASETS.items():
        at = {"decode": n_all, "cache": n_all, "cache again": n_all, "train epoch": n_train,
              "predict": n_test, "pies": n_test, "analysis": n_test}  # fmt: skip
        stages: dict[str, dict[str, float]] = {}
        for stage in STAGES:
            rows = sorted((m for m in measured if m["stage"] == stage), key=lambda m: m["images"])
            a, b = fit(ns, [m["seconds"] for m in rows])
            ma, mb = fit(ns, [m["peak_rss_mb"] for m in rows])
            stages[stage] = {"images": at[stage], "seconds": round(a + b * at[stage], 1),
                             "peak_rss_mb": round(ma + mb * at[stage])}  # fmt: skip
        train_data = stages["train epoch"]["seconds"]  # one epoch of one seed, data path
        predict_data = stages["predict"]["seconds"]  # one seed, 20 sparsities, data path
        cpu_train = n_train * model["resnet50_train_s_per_image"]
        cpu_infer = K * n_test * model["resnet50_infer_s_per_image"]
        once = (
            stages["cache"]["seconds"] + stages["pies"]["seconds"] + stages["analysis"]["seconds"]
        )
        per_seed_cpu = epochs * (train_data + cpu_train) + predict_data + cpu_infer
        row: dict[str, Any] = {
            "stages (this machine)": stages,
            "resnet50 on this CPU: one seed's epoch, hours": round(
                (train_data + cpu_train) / 3600, 1
            ),
            f"resnet50 on this CPU: {SEEDS} seeds x {epochs} epochs + prediction, hours": round(
                (once + SEEDS * per_seed_cpu) / 3600
            ),
        }
        if gpu:
            # the GPU's model time, or the data path where that is slower (the GPU would wait)
            train_s = max(n_train / gpu["train_images_per_s"], train_data)
            infer_s = K * n_test / gpu["inference_images_per_s (fp32)"]
            per_seed = epochs * train_s + infer_s
            row[f"one GPU ({gpu['device']}), hours"] = round((once + SEEDS * per_seed) / 3600, 1)
            row[f"Ray, {gpus} GPUs, hours"] = round(
                (once + math.ceil(SEEDS / gpus) * per_seed) / 3600, 1
            )
        out[name] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, metavar=("STAGE", "N", "WHERE"))
    parser.add_argument("--counts", default="1000,5000,20000")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per seed (early stopping)")
    parser.add_argument("--gpu", type=Path, help="benchmarks/gpu.py's JSON from a GPU machine")
    parser.add_argument("--gpus", type=int, default=8, help="GPUs of the Ray cluster")
    args, sources = full_size_sources(parser)
    if args.child:
        stage, n, where = args.child
        import importlib

        for module in ("ml.analysis.report", "ml.pies", "ml.predict", "ml.train"):
            importlib.import_module(module)  # imported before the stage's clock starts

        t = time.perf_counter()
        said = child(stage.replace("-", " "), int(n), Path(where), sources)
        print(json.dumps({"stage_s": round(time.perf_counter() - t, 2), **said}))
        return
    from ml.analysis.synthetic import synthetic_store

    counts = [int(c) for c in args.counts.split(",")]
    measured: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            cache, store = Path(tmp) / f"cache-{n}", Path(tmp) / f"store-{n}"
            t = time.perf_counter()
            synthetic_store(store, seeds=SEEDS, images=n, classes=CLASSES)
            made = time.perf_counter() - t
            for stage in STAGES:
                where = store if stage in ("pies", "analysis") else cache
                rss, wall, said = in_child(
                    Path(__file__), [stage.replace(" ", "-"), str(n), str(where)]
                )
                measured.append({"stage": stage, "images": n, "seconds": said.pop("stage_s"),
                                 "process_s": round(wall, 1), "peak_rss_mb": round(rss), **said})  # fmt: skip
                print(json.dumps(measured[-1]), file=sys.stderr, flush=True)
            print(
                json.dumps({"synthetic store made, s": round(made, 1), "images": n}),
                file=sys.stderr,
            )
    model = model_cost()
    gpu = json.loads(args.gpu.read_text()) if args.gpu else None
    print(json.dumps({
        "cores": os.cpu_count(), "size": SIZE, "measured": measured,
        "model (this CPU)": {k: round(v, 3) for k, v in model.items()},
        "epochs": args.epochs, "seeds": SEEDS,
        "extrapolated": extrapolate(measured, model, args.epochs, gpu, args.gpus),
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
