"""Side-by-side benchmarks: our implementation vs the reference approach, in one process.

Prints one line per comparison, `<name> ratio=<x> identical=<true|false>`, where ratio is the
reference's time over ours. Then times the whole analysis of a synthetic store the size of
NIH-CXR-LT's test set (S=30, K=20, N=22,424, C=20) in a child process and reports its peak
memory. `--quick` uses smaller sizes and finishes in under a minute.

Never part of the test pass/fail: speed goals are checked here, as ratios.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FULL = {"S": 30, "K": 20, "N": 22_424, "C": 20}
QUICK = {"S": 4, "K": 20, "N": 3_000, "C": 20}


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def report(name: str, ours: float, ref: float, identical: bool, extra: str = "") -> None:
    print(f"{name} ratio={ref / ours:.1f} identical={'true' if identical else 'false'}"
          f"  (ours {ours:.3f} s, reference {ref:.3f} s{extra})", flush=True)  # fmt: skip


def bench_pie_scores(n: int, c: int) -> None:
    import pandas as pd

    from ml.measures import rowwise_spearman

    rng = np.random.default_rng(0)
    dense = np.round(rng.random((n, c)), 3)
    pruned = np.round(dense + rng.normal(0, 0.1, (n, c)), 3)
    t_ours, ours = timed(lambda: rowwise_spearman(dense, pruned), repeat=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_ref, ref = timed(
            lambda: (
                pd.DataFrame(dense)
                .corrwith(pd.DataFrame(pruned), axis=1, method="spearman")
                .to_numpy()
            )
        )
    a, b = np.asarray(ours), np.asarray(ref)
    same = bool(np.array_equal(np.isnan(a), np.isnan(b)) and np.nanmax(np.abs(a - b)) <= 1e-12)
    report("pie_scores", t_ours, t_ref, same, f", N={n}, C={c}")


def bench_ap_grid(s: int, k: int, n: int, c: int) -> None:
    from sklearn.metrics import average_precision_score

    from ml.metrics import average_precision

    rng = np.random.default_rng(1)
    y = (rng.random((n, c)) < np.logspace(-0.5, -3, c)).astype(np.uint8)
    y[0] = 1
    scores = np.round(rng.random((s, k, n, c)), 4).astype(np.float32)
    t_ours, ours = timed(lambda: average_precision(y, scores))

    def loop() -> np.ndarray:
        out = np.empty((s, k, c))
        for i in range(s):
            for j in range(k):
                for m in range(c):
                    out[i, j, m] = average_precision_score(y[:, m], scores[i, j, :, m])
        return out

    t_ref, ref = timed(loop)
    same = bool(np.nanmax(np.abs(np.asarray(ours) - np.asarray(ref))) <= 1e-12)
    report("ap_grid", t_ours, t_ref, same, f", S={s} K={k} N={n} C={c}")


def bench_prune_20(model_name: str) -> None:
    import torch
    from torch import nn
    from torch.nn.utils import prune

    from ml.models import create_model
    from ml.prune import prunable_weights, pruned_models, rank_weights
    from ml.store import SPARSITIES

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.pt"
        torch.save(create_model(model_name, 20).state_dict(), path)

        def load() -> nn.Module:
            m = create_model(model_name, 20)
            m.load_state_dict(torch.load(path, weights_only=True))
            return m

        def zeros(weights: list[torch.Tensor]) -> int:
            return sum(int((w == 0).sum()) for w in weights)

        # Each side's clock runs over loading and pruning only; the zero counts that prove the
        # two identical are taken outside it.
        zeros_ours: list[int] = []
        t = time.perf_counter()
        model = load()
        ranking = rank_weights(model)
        t_ours = time.perf_counter() - t
        steps = pruned_models(model, ranking, SPARSITIES)
        while True:
            t = time.perf_counter()
            step = next(steps, None)
            t_ours += time.perf_counter() - t
            if step is None:
                break
            zeros_ours.append(zeros([w for _, w in prunable_weights(step[1])]))

        zeros_ref: list[int] = []
        t_ref = 0.0
        for k in SPARSITIES:
            t = time.perf_counter()
            fresh = load()  # a freshly loaded model for each call
            targets = [
                (mod, "weight") for mod in fresh.modules() if isinstance(mod, nn.Conv2d | nn.Linear)
            ]
            prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=k)
            t_ref += time.perf_counter() - t
            zeros_ref.append(zeros([mod.weight for mod, _ in targets]))
    report(
        "prune_20",
        t_ours,
        t_ref,
        zeros_ours == zeros_ref,
        f", {model_name}, zero counts at 20 sparsities",
    )


def _analysis_child(store_path: str, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    from ml.analysis.report import analyze
    from ml.analysis.synthetic import train_counts_for
    from ml.store import PredictionStore

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        store = PredictionStore.open(Path(store_path))
        analyze(store, train_counts_for(store))
        seconds = time.perf_counter() - t
    queue.put((seconds, _peak_rss_gb()))


def _peak_rss_gb() -> float:
    """This process's own peak resident memory (VmHWM). getrusage's ru_maxrss is not used: after
    fork+exec it still holds the high-water mark of the forked copy of the parent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024**2


def bench_full_analysis(size: dict[str, int]) -> None:
    from ml.analysis.synthetic import synthetic_store

    with tempfile.TemporaryDirectory(
        dir=Path.cwd() / "var" if (Path.cwd() / "var").is_dir() else None
    ) as d:
        t = time.perf_counter()
        synthetic_store(Path(d) / "store", seeds=size["S"], images=size["N"], classes=size["C"])
        made = time.perf_counter() - t
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        child = ctx.Process(target=_analysis_child, args=(str(Path(d) / "store"), queue))
        child.start()
        seconds, peak_gb = queue.get()
        child.join()
    print(f"analysis seconds={seconds:.1f} peak_memory_gb={peak_gb:.2f}  "
          f"(whole analysis of S={size['S']} K={size['K']} N={size['N']} C={size['C']}; store made in {made:.0f} s)", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under a minute")
    parser.add_argument(
        "--only",
        choices=["pie_scores", "ap_grid", "prune_20", "analysis"],
        help="run one benchmark",
    )
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    run = {args.only} if args.only else {"pie_scores", "ap_grid", "prune_20", "analysis"}
    if "pie_scores" in run:
        bench_pie_scores(size["N"], size["C"])
    if "ap_grid" in run:
        bench_ap_grid(size["S"], size["K"], size["N"], size["C"])
    if "prune_20" in run:
        bench_prune_20("smallcnn" if args.quick else "resnet50")
    if "analysis" in run:
        bench_full_analysis(size)


if __name__ == "__main__":
    main()
