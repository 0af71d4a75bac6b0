"""PIE regeneration: from a source to a PIE set and its analysis report, resumably.

Sources: `train` (train a population on a dataset's train/val split, prune it and predict its
test split), `store` (an existing prediction store) or `reference` (the reference code's
prediction pickles). The map, one task per seed (train, then prune and predict at the 20
sparsities), runs on an executor: in this process (`local`) or on a Ray cluster (`ray`). The
reduce (store, PIEs, analysis) always runs here.

Everything is written under one work folder. A seed whose files are complete there is never
redone, so a run that is stopped or whose worker dies resumes where it left off.

The database knows nothing of this module and this module nothing of the database: the backend's
run service gives it the inputs and a context (progress, log, cancellation) and turns its result
into a frozen PIE set.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.data.labels import LabelRecord, LabelTable
from ml.executors import Executor, LocalExecutor, RunContext, SeedOutput
from ml.fileio import atomic_write
from ml.runparams import RunParams
from ml.store import SPARSITIES, PredictionStore, StoreMeta, StoreWriter

if TYPE_CHECKING:
    from ml.data.images import SplitData


@dataclass(frozen=True)
class DatasetInputs:
    """What the run needs of the dataset: its images and labels, per split."""

    name: str
    classes: tuple[str, ...]
    image_root: Path
    records: tuple[LabelRecord, ...]
    cache_dir: Path | None = None  # the dataset's image cache (ml.data.cache); None: decode in RAM

    def table(self) -> LabelTable:
        return LabelTable("plain", self.classes, self.records)

    def train_counts(self, classes: Sequence[str]) -> list[int]:
        index = {c: i for i, c in enumerate(self.classes)}
        missing = [c for c in classes if c not in index]
        if missing:
            raise ValueError(f"the dataset has no class(es) {', '.join(missing)} of the store")
        train = [r for r in self.records if r.split == "train"]
        if not train:
            raise ValueError(f"dataset {self.name!r} has no train split to count labels in")
        return [sum(r.labels[index[c]] for r in train) for c in classes]


@dataclass
class RegenerationResult:
    pieset_csv: bytes
    summary: dict[str, Any]
    report_html: bytes
    store_path: Path
    timings: dict[str, float] = field(default_factory=dict)


def _predictions_file(work: Path, seed: int) -> Path:
    return work / "predictions" / f"seed-{seed}.npz"


def _seed_files_done(work: Path, seed: int) -> bool:
    from ml.train import is_finished

    return is_finished(work / "population", seed) and _predictions_file(work, seed).is_file()


def _keep_seed(work: Path, out: SeedOutput) -> None:
    """Write a finished seed: its checkpoint folder (history.json last, which marks it finished
    for `piestudy ml`), then its predictions, each file whole or absent."""
    from ml.train import seed_dir

    d = seed_dir(work / "population", out.seed)
    for name in sorted(out.files, key=lambda n: n == "history.json"):
        atomic_write(d / name, out.files[name])
    buffer = io.BytesIO()
    np.savez(buffer, predictions=out.predictions, report=json.dumps(out.report))
    atomic_write(_predictions_file(work, out.seed), buffer.getvalue())


def _load_split(inputs: DatasetInputs, split: str, size: int) -> SplitData:
    from ml.data.images import load_split

    return load_split(inputs.table(), inputs.image_root, split, size, cache_dir=inputs.cache_dir)


def _train_store(
    params: RunParams, inputs: DatasetInputs, work: Path, ctx: RunContext, executor: Executor,
    timings: dict[str, float],
) -> PredictionStore:  # fmt: skip
    store_dir = work / "store"
    if (store_dir / "manifest.json").is_file():
        ctx.log("prediction store already built: reused")
        return PredictionStore.open(store_dir)
    todo = [s for s in params.seeds if not _seed_files_done(work, s)]
    for s in params.seeds:
        if s not in todo:
            ctx.log(f"seed {s}: already trained and predicted, skipped")
    t = time.perf_counter()
    ctx.stage("decode images", 0.02)
    data = tuple(
        _load_split(inputs, split, params.image_size) for split in ("train", "val", "test")
    )
    train, val, test = data
    ctx.log(
        f"decoded {len(train.image_ids)} train, {len(val.image_ids)} val and {len(test.image_ids)} test images at {params.image_size} px"
        + (
            f" (image cache: {sum(d.decoded or 0 for d in data)} decoded, the rest reused)"
            if inputs.cache_dir is not None
            else ""
        )
    )
    timings["decode"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    finished = len(params.seeds) - len(todo)
    ctx.stage("train, prune and predict", 0.05 + 0.8 * finished / len(params.seeds))

    def done(out: SeedOutput) -> None:
        nonlocal finished
        _keep_seed(work, out)
        finished += 1
        history = json.loads(out.files["history.json"])
        ctx.log(
            f"seed {out.seed}: {len(history['epochs'])} epochs, best val loss "
            f"{history['best_val_loss']:.4f} (epoch {history['best_epoch']}), 20 sparsities "
            f"predicted in {out.seconds:.1f} s"
            + (f" (training resumed after epoch {out.resumed_after})" if out.resumed_after else "")
        )
        ctx.stage("train, prune and predict", 0.05 + 0.8 * finished / len(params.seeds))

    if todo:
        ctx.log(f"executor {executor.name}: seed(s) {', '.join(map(str, todo))}")
        executor.map_seeds(todo, params, data, ctx, done, work)  # type: ignore[arg-type]
    timings["seeds"] = round(time.perf_counter() - t, 3)
    ctx.check()
    from ml.train import epochs_run

    meta = StoreMeta(
        dataset=inputs.name, classes=test.classes, image_ids=test.image_ids, seeds=params.seeds,
        sparsities=SPARSITIES, model={
            "name": params.model, "image_size": params.image_size, "pretrained": params.pretrained,
            "max_epochs": params.epochs, "patience": params.patience,
            "batch_size": params.batch_size, "lr": params.lr,
            "epochs_run": epochs_run(work / "population", params.seeds),
        },
        pruning={"method": params.method, "min_keep": params.min_keep, "scope": "Conv2d and Linear weights"},
        notes={
            "made_by": "piestudy run", "threads_per_seed": params.threads,
            "split_sizes": {"train": len(train.image_ids), "val": len(val.image_ids)},
        },
    )  # fmt: skip
    report = {}
    with StoreWriter(store_dir, meta, test.labels.numpy().astype("uint8"), overwrite=True) as w:
        for si, seed in enumerate(params.seeds):
            with np.load(_predictions_file(work, seed)) as f:
                for ki in range(len(SPARSITIES)):
                    w.write(si, ki, f["predictions"][ki])
                report[str(seed)] = json.loads(str(f["report"]))
        w.extra_files["pruning_report.json"] = report
        return w.commit()


def _within(path: Path, roots: Sequence[Path], what: str) -> Path:
    resolved = path.resolve()
    if not any(resolved.is_relative_to(r.resolve()) for r in roots):
        raise ValueError(f"{what}: {path} is outside the folders this server may read")
    return resolved


def regenerate(
    params: RunParams, inputs: DatasetInputs, work: Path, ctx: RunContext, *,
    executor: Executor | None = None, allowed_roots: Sequence[Path] = (), run_id: int | None = None,
) -> RegenerationResult:  # fmt: skip
    """Run the whole regeneration; resumable from `work`. Raises ValueError (bad input, with a
    message that names it), RunCancelled, or whatever the training raised. The parameters were
    checked when RunParams was made."""
    from ml.analysis.report import analyze, write_report
    from ml.pies import write_pie_set

    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    if params.source == "train":
        if params.pretrained:  # checked here, before any image is decoded
            weights = _within(Path(params.pretrained), allowed_roots, "pretrained")
            if not weights.is_file():
                raise ValueError(f"pretrained: {params.pretrained} is not a file")
            params = params.model_copy(update={"pretrained": str(weights)})
            ctx.log(f"the backbones start from {weights}")
        store = _train_store(params, inputs, work, ctx, executor or LocalExecutor(), timings)
    elif params.source == "store":
        assert params.store_path
        store = PredictionStore.open(_within(Path(params.store_path), allowed_roots, "store_path"))
        ctx.log(f"prediction store {params.store_path}: {' x '.join(map(str, store.meta.shape))}")
    else:
        assert params.reference_dir
        from ml.reference import import_reference

        ctx.stage("read the reference pickles", 0.05)
        directory = _within(Path(params.reference_dir), allowed_roots, "reference_dir")
        labels = (
            _within(Path(params.reference_labels), allowed_roots, "reference_labels")
            if params.reference_labels
            else None
        )
        t = time.perf_counter()
        store = import_reference(directory, work / "store", labels_csv=labels, overwrite=True).store
        timings["import"] = round(time.perf_counter() - t, 3)
        ctx.log(f"imported the reference pickles: {' x '.join(map(str, store.meta.shape))}")
    ctx.check()
    ctx.stage("PIEs and analysis", 0.88)
    t = time.perf_counter()
    counts = inputs.train_counts(store.meta.classes)
    magnitudes = None
    if params.source == "train":  # Fig. 1's weight histogram: the first seed's trained model
        from ml.train import trained_weights

        magnitudes = trained_weights(work / "population", len(store.meta.classes))
    analysis = analyze(
        store, counts, k_star=params.k_star, percentile=params.percentile, measure=params.measure,
        weights=magnitudes, provenance_extra={"run_id": run_id, "source": params.source},
    )  # fmt: skip
    timings["analysis"] = round(time.perf_counter() - t, 3)
    ctx.check()
    ctx.stage("report", 0.95)
    t = time.perf_counter()
    page = write_report(analysis, work / "report")
    summary_path = write_pie_set(
        analysis.pies, work / "pies.csv", {"dataset": inputs.name, "seeds": list(store.meta.seeds)}
    )
    timings["report"] = round(time.perf_counter() - t, 3)
    s = analysis.pies.summary()
    ctx.log(
        f"{s['pies']} PIEs of {s['images']} images ({params.measure} score <= {s['threshold']:.4f} "
        f"at k*={params.k_star:g}); "
        f"first significant mAP drop at k = {analysis.overall.first_significant_k}"
    )
    return RegenerationResult(
        (work / "pies.csv").read_bytes(),
        json.loads(summary_path.read_text()),
        page.read_bytes(),
        store.path,
        timings,
    )
