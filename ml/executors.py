"""Where the seeds of a regeneration run: in this process (`local`) or on a Ray cluster (`ray`).

The map of a regeneration is one task per seed: train it, prune it at every sparsity and predict
the test split (seed_task). An executor runs those tasks and hands each output back, as it
finishes, to the caller in this process, which keeps it (ml.regenerate).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

import numpy as np
import numpy.typing as npt

from ml.runparams import RunParams

if TYPE_CHECKING:
    from ml.data.images import SplitData

ExecutorName = Literal["local", "ray"]
EXECUTORS: tuple[str, ...] = get_args(ExecutorName)


class RunCancelled(Exception):  # noqa: N818 - a state, not an error
    """Raised by RunContext.check() when the run was cancelled (or this worker lost it)."""


class RunContext(Protocol):
    def stage(self, name: str, fraction: float) -> None:
        """The run is in stage `name`, `fraction` (0..1) of the whole run done."""

    def log(self, line: str) -> None: ...

    def check(self) -> None:
        """Raise RunCancelled if the run should stop."""


@dataclass(frozen=True)
class SeedOutput:
    seed: int
    files: dict[str, bytes]  # the seed's checkpoint folder: model.pt, config.json, history.json
    predictions: npt.NDArray[np.float32]  # [K, N, C]
    report: dict[str, list[dict[str, object]]]
    seconds: float
    resumed_after: int = 0  # the epoch an interrupted training of the seed resumed after


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
    training_dir: Path | None = None,
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
        pretrained_path=params.pretrained,
    )  # fmt: skip
    with _torch_threads(params.threads), tempfile.TemporaryDirectory() as tmp:
        # a training folder that outlives the task lets an interrupted seed resume at its epoch
        run_dir = training_dir if training_dir is not None else Path(tmp)
        trained = train_seed(config, seed, train, val, run_dir, progress, check)
        device = resolve_device(config.device)
        model, _ = load_seed_model(run_dir, seed, len(test.classes), device)
        pruning = PruningConfig(method=params.method, min_keep=params.min_keep)
        predictions, report = predict_seed(model, seed, test, pruning, 128, device, check)
        files = {p.name: p.read_bytes() for p in seed_dir(run_dir, seed).iterdir()}
        del model
    if training_dir is not None:  # the caller keeps the files it was given
        shutil.rmtree(seed_dir(training_dir, seed), ignore_errors=True)
    return SeedOutput(
        seed, files, predictions, report, time.perf_counter() - started, trained.resumed_after
    )


class Executor(Protocol):
    name: str

    def map_seeds(
        self, seeds: Sequence[int], params: RunParams, data: tuple[SplitData, SplitData, SplitData],
        ctx: RunContext, done: Callable[[SeedOutput], None], work: Path,
    ) -> None:  # fmt: skip
        """Run seed_task for every seed and call `done` here with each output as it finishes.
        `work` is the run's folder on this machine."""


class LocalExecutor:
    name = "local"

    def map_seeds(
        self, seeds: Sequence[int], params: RunParams, data: tuple[SplitData, SplitData, SplitData],
        ctx: RunContext, done: Callable[[SeedOutput], None], work: Path,
    ) -> None:  # fmt: skip
        # training state in the run's folder: a seed interrupted here resumes after its last
        # whole epoch when the run is resumed
        for seed in seeds:
            done(seed_task(seed, params, *data, check=ctx.check, training_dir=work / "training"))


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
        ctx: RunContext, done: Callable[[SeedOutput], None], work: Path,
    ) -> None:  # fmt: skip
        # (`work` is this machine's; the tasks train in folders of their own, on other machines)
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
    raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, not {name!r}")
