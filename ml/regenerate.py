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

import dataclasses
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from ml.data.labels import LabelRecord, LabelTable
from ml.store import SPARSITIES, PredictionStore, StoreMeta, StoreWriter

if TYPE_CHECKING:
    from ml.data.images import SplitData

Source = Literal["train", "store", "reference"]
SOURCES: tuple[Source, ...] = ("train", "store", "reference")
MODELS = ("smallcnn", "resnet18", "resnet50")


class RunCancelled(Exception):  # noqa: N818 - a state, not an error
    """Raised by RunContext.check() when the run was cancelled (or this worker lost it)."""


class RunContext(Protocol):
    def stage(self, name: str, fraction: float) -> None:
        """The run is in stage `name`, `fraction` (0..1) of the whole run done."""

    def log(self, line: str) -> None: ...

    def check(self) -> None:
        """Raise RunCancelled if the run should stop."""


@dataclass(frozen=True)
class RunParams:
    source: Source = "train"
    seeds: tuple[int, ...] = (0, 1, 2)
    model: str = "smallcnn"
    image_size: int = 64
    epochs: int = 8
    patience: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    k_star: float = 0.9
    percentile: float = 5.0
    min_keep: float = 0.0  # Global MP's per-layer minimum (0.0005 = 0.05%); 0: off
    method: Literal["l1", "random"] = "l1"
    threads: int = 1  # torch threads per seed task, the same on every executor (reproducible)
    store_path: str | None = None  # source "store"
    reference_dir: str | None = None  # source "reference"
    reference_labels: str | None = None  # the test label CSV the pickles' rows follow

    def problems(self) -> list[str]:
        """What is wrong with these parameters, one message per field (empty: fine)."""
        out: list[str] = []
        if self.source not in SOURCES:
            out.append(f"source: must be one of {', '.join(SOURCES)}")
        if self.source == "train":
            if not self.seeds or len(set(self.seeds)) != len(self.seeds):
                out.append("seeds: give one or more distinct seeds")
            if any(s < 0 for s in self.seeds):
                out.append("seeds: must be >= 0")
            if self.model not in MODELS:
                out.append(f"model: must be one of {', '.join(MODELS)}")
            if not 16 <= self.image_size <= 1024:
                out.append("image_size: between 16 and 1024")
            if not 1 <= self.epochs <= 1000 or not 1 <= self.patience <= 1000:
                out.append("epochs and patience: between 1 and 1000")
            if not 1 <= self.batch_size <= 4096:
                out.append("batch_size: between 1 and 4096")
            if not 0 < self.lr < 1:
                out.append("lr: between 0 and 1")
            if not 1 <= self.threads <= 256:
                out.append("threads: between 1 and 256")
        if self.source == "store" and not self.store_path:
            out.append("store_path: the prediction store to use")
        if self.source == "reference" and not self.reference_dir:
            out.append("reference_dir: the folder of the reference pickles")
        if round(self.k_star, 6) not in {round(k, 6) for k in SPARSITIES} or self.k_star == 0:
            out.append(
                f"k_star: one of the pruned sparsities {', '.join(f'{k:g}' for k in SPARSITIES[1:])}"
            )
        if not 0 < self.percentile < 100:
            out.append("percentile: strictly between 0 and 100")
        if not 0 <= self.min_keep < 0.5:
            out.append("min_keep: between 0 and 0.5")
        if self.method not in ("l1", "random"):
            out.append("method: l1 or random")
        return out

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["seeds"] = list(self.seeds)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunParams:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(unknown)}")
        values = dict(data)
        if "seeds" in values:
            values["seeds"] = tuple(int(s) for s in values["seeds"])
        return cls(**values)


@dataclass(frozen=True)
class DatasetInputs:
    """What the run needs of the dataset: its images and labels, per split."""

    name: str
    classes: tuple[str, ...]
    image_root: Path
    records: tuple[LabelRecord, ...]

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


# ---------------------------------------------------------------- the map: one task per seed


@dataclass(frozen=True)
class SeedOutput:
    seed: int
    files: dict[str, bytes]  # the seed's checkpoint folder: model.pt, config.json, history.json
    predictions: npt.NDArray[np.float32]  # [K, N, C]
    report: dict[str, list[dict[str, object]]]
    seconds: float


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def seed_task(
    seed: int, params: RunParams, train: SplitData, val: SplitData, test: SplitData,
    check: Callable[[], None] | None = None, progress: Callable[[str, int, int], None] | None = None,
) -> SeedOutput:  # fmt: skip
    """Train one seed, prune it at every sparsity and predict the test split. Pure: it writes
    only to a temporary folder and returns everything, so it runs the same on any machine."""

    from ml.config import TrainConfig, resolve_device
    from ml.predict import PruningConfig, predict_seed
    from ml.train import load_seed_model, seed_dir, train_seed

    started = time.perf_counter()
    config = TrainConfig(
        model=params.model, image_size=params.image_size, max_epochs=params.epochs,
        patience=params.patience, batch_size=params.batch_size, lr=params.lr,
    )  # fmt: skip
    with _torch_threads(params.threads), tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        train_seed(config, seed, train, val, run_dir, progress, check)
        device = resolve_device(config.device)
        model, _ = load_seed_model(run_dir, seed, len(test.classes), device)
        pruning = PruningConfig(method=params.method, min_keep=params.min_keep)
        predictions, report = predict_seed(model, seed, test, pruning, 128, device, check)
        files = {p.name: p.read_bytes() for p in seed_dir(run_dir, seed).iterdir()}
        del model
    return SeedOutput(seed, files, predictions, report, time.perf_counter() - started)


class Executor(Protocol):
    name: str

    def map_seeds(
        self, seeds: Sequence[int], params: RunParams, data: tuple[SplitData, SplitData, SplitData],
        ctx: RunContext, done: Callable[[SeedOutput], None],
    ) -> None:  # fmt: skip
        """Run seed_task for every seed and call `done` here with each output as it finishes."""


class LocalExecutor:
    name = "local"

    def map_seeds(
        self, seeds: Sequence[int], params: RunParams, data: tuple[SplitData, SplitData, SplitData],
        ctx: RunContext, done: Callable[[SeedOutput], None],
    ) -> None:  # fmt: skip
        for seed in seeds:
            done(seed_task(seed, params, *data, check=ctx.check))


def _ray_seed_task(seed: int, params: dict[str, Any], data: Any) -> SeedOutput:
    return seed_task(seed, RunParams.from_dict(params), *data)


class RayExecutor:
    """One Ray task per seed (a GPU each where the cluster has GPUs); the data goes into the
    object store once. `address`: a running cluster ("ray://host:10001", "auto"), or None for a
    local instance of `num_cpus` CPUs."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        self.address = address
        self.num_cpus = num_cpus

    def map_seeds(
        self, seeds: Sequence[int], params: RunParams, data: tuple[SplitData, SplitData, SplitData],
        ctx: RunContext, done: Callable[[SeedOutput], None],
    ) -> None:  # fmt: skip
        # Under `uv run`, Ray would start its workers through `uv run` in a copy of the working
        # folder (another environment); this process's interpreter is the one to use.
        os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
        import ray

        started_here = not ray.is_initialized()
        if started_here:
            local = self.address is None
            ray.init(
                address=self.address, num_cpus=self.num_cpus if local else None,
                include_dashboard=False, log_to_driver=False, configure_logging=False,
                runtime_env={"py_executable": sys.executable} if local else None,
            )  # fmt: skip
        try:
            resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
            gpus = 1 if resources.get("GPU", 0) >= 1 else 0
            task = ray.remote(num_cpus=params.threads, num_gpus=gpus, max_retries=2)(_ray_seed_task)
            data_ref = ray.put(data)
            pending = {task.remote(s, params.to_dict(), data_ref): s for s in seeds}
            ctx.log(
                f"ray: {len(pending)} seed task(s) submitted "
                f"({params.threads} CPU{', 1 GPU' if gpus else ''} each)"
            )
            try:
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                    ctx.check()
                    for ref in ready:
                        pending.pop(ref)
                        done(ray.get(ref))
            finally:
                for ref in pending:
                    ray.cancel(ref, force=True)
        finally:
            if started_here:
                ray.shutdown()


def make_executor(name: str, address: str | None = None) -> Executor:
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address, num_cpus=None if address else os.cpu_count())
    raise ValueError(f"executor must be local or ray, not {name!r}")


# ---------------------------------------------------------------- the whole run


def _seed_files_done(work: Path, seed: int) -> bool:
    d = work / "population" / f"seed-{seed}"
    return (d / "history.json").is_file() and (work / "predictions" / f"seed-{seed}.npz").is_file()


def _keep_seed(work: Path, out: SeedOutput) -> None:
    """Write a finished seed: its checkpoint folder (history.json last, which marks it finished
    for `piestudy ml`) and its predictions; each file to a temporary name, then renamed."""
    d = work / "population" / f"seed-{out.seed}"
    d.mkdir(parents=True, exist_ok=True)
    for name in sorted(out.files, key=lambda n: n == "history.json"):
        tmp = d / f".{name}.tmp"
        tmp.write_bytes(out.files[name])
        tmp.replace(d / name)
    preds = work / "predictions"
    preds.mkdir(exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, predictions=out.predictions, report=json.dumps(out.report))
    tmp = preds / f".seed-{out.seed}.npz.tmp"
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(preds / f"seed-{out.seed}.npz")


def _load_split(inputs: DatasetInputs, split: str, size: int) -> SplitData:
    from ml.data.images import load_split

    return load_split(inputs.table(), inputs.image_root, split, size)


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
        )
        ctx.stage("train, prune and predict", 0.05 + 0.8 * finished / len(params.seeds))

    if todo:
        ctx.log(f"executor {executor.name}: seed(s) {', '.join(map(str, todo))}")
        executor.map_seeds(todo, params, data, ctx, done)  # type: ignore[arg-type]
    timings["seeds"] = round(time.perf_counter() - t, 3)
    ctx.check()
    meta = StoreMeta(
        dataset=inputs.name, classes=test.classes, image_ids=test.image_ids, seeds=params.seeds,
        sparsities=SPARSITIES, model={"name": params.model, "image_size": params.image_size},
        pruning={"method": params.method, "min_keep": params.min_keep, "scope": "Conv2d and Linear weights"},
        notes={"made_by": "piestudy run", "threads_per_seed": params.threads},
    )  # fmt: skip
    report = {}
    with StoreWriter(store_dir, meta, test.labels.numpy().astype("uint8"), overwrite=True) as w:
        for si, seed in enumerate(params.seeds):
            with np.load(work / "predictions" / f"seed-{seed}.npz") as f:
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
    executor: Executor | None = None, allowed_roots: Sequence[Path] = (),
) -> RegenerationResult:  # fmt: skip
    """Run the whole regeneration; resumable from `work`. Raises ValueError (bad input, with a
    message that names it), RunCancelled, or whatever the training raised."""
    from ml.analysis.report import analyze, write_report
    from ml.pies import write_pie_set

    problems = params.problems()
    if problems:
        raise ValueError("; ".join(problems))
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    if params.source == "train":
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
    analysis = analyze(store, counts, k_star=params.k_star, percentile=params.percentile)
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
        f"{s['pies']} PIEs of {s['images']} images (score <= {s['threshold']:.4f} at k*={params.k_star:g}); "
        f"first significant mAP drop at k = {analysis.overall.first_significant_k}"
    )
    return RegenerationResult(
        (work / "pies.csv").read_bytes(),
        json.loads(summary_path.read_text()),
        page.read_bytes(),
        store.path,
        timings,
    )
