"""Peak memory of prune + predict reading the image cache: it grows with the batch, not with N.

Builds image caches of N = 5,000 and 20,000 images at 256 px (1.3 GB for 20k), from a few
hundred distinct 256-px PNGs each listed many times (every row a real decode), then runs one
seed's inference at two sparsities (ml.predict.predict_seed: the engine's own reads and its own
pruning) in a fresh process per setting, and reads that process's peak RSS from the kernel
(wait4). Side by side: the rows read into buffers (CachedRows, today) and the file mapped as
one tensor (the reader before: every page it touched stayed in the process). The model is a
one-convolution net, so the figure is the engine's and the data's, not a ResNet's weights'
(ResNet-50 adds its ~100 MB of weights and its activations, which grow with the batch too).
One pass over the split reaches the peak; more sparsities repeat the same pass.

    uv run python benchmarks/cache_memory.py            # about 2 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import in_child  # noqa: E402

SIZE = 256
CLASSES = 20


def child(cache: Path, count: int, batch: int, reader: str) -> None:
    import numpy as np
    import torch
    from torch import nn

    from ml.data.cache import PIXELS, CachedRows
    from ml.data.images import SplitData
    from ml.predict import PruningConfig, predict_seed

    torch.manual_seed(0)
    rows = CachedRows(cache / PIXELS, count, SIZE)
    images = (
        rows
        if reader == "rows"
        else torch.from_numpy(np.memmap(cache / PIXELS, np.uint8, "r", shape=rows.shape))
    )
    labels = torch.zeros(count, CLASSES)
    data = SplitData(tuple(map(str, range(count))), images, labels, tuple(map(str, range(CLASSES))))
    model = nn.Sequential(
        nn.Conv2d(3, 8, 16, stride=16), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, CLASSES),
    )  # fmt: skip
    if reader == "none":  # the libraries, the model and the split's labels: the floor
        return
    pruning = PruningConfig(sparsities=(0.0, 0.9))
    out, _ = predict_seed(model, 0, data, pruning, batch, torch.device("cpu"))
    print(json.dumps({"predictions_shape": list(out.shape)}))


def peak_rss_mb(args: list[str]) -> tuple[float, float]:
    """Run this file as a child with `args`; its peak resident set (MB) and wall seconds."""
    rss, wall, _ = in_child(Path(__file__), args)
    return rss, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=4, metavar=("CACHE", "N", "BATCH", "READER"))
    parser.add_argument("--counts", default="5000,20000")
    parser.add_argument("--batches", default="64,128,256")
    parser.add_argument("--distinct", type=int, default=400, help="distinct source PNGs")
    args = parser.parse_args()
    if args.child:
        cache, count, batch, reader = args.child
        child(Path(cache), int(count), int(batch), reader)
        return
    import numpy as np
    from PIL import Image

    from ml.data.cache import open_cache

    counts = [int(c) for c in args.counts.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    rng = np.random.default_rng(0)
    out: dict[str, object] = {"size": SIZE, "cores": os.cpu_count()}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        sources = []
        for i in range(args.distinct):
            path = Path(tmp) / f"src{i:04d}.png"
            base = np.linspace(0, 255, SIZE)[None, :] * rng.uniform(0.3, 1.0)
            noise = rng.normal(0, 20, (SIZE, SIZE))
            Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(path)
            sources.append(path)
        caches = {}
        for count in counts:
            t = time.perf_counter()
            paths = [sources[i % len(sources)] for i in range(count)]
            cache = open_cache(
                Path(tmp) / f"cache-{count}", [f"i{i}" for i in range(count)], paths, SIZE
            )
            caches[count] = cache.directory
            out[f"cache_{count}_build_s"] = round(time.perf_counter() - t, 1)
            out[f"cache_{count}_mb"] = round(count * SIZE * SIZE / 1e6)
        floor, _ = peak_rss_mb([str(caches[counts[-1]]), str(counts[-1]), "1", "none"])
        out["floor_rss_mb (imports, model, labels; no images)"] = round(floor)
        for reader in ("rows", "mapped"):
            for count in counts:
                for batch in batches if reader == "rows" else batches[:1]:
                    rss, wall = peak_rss_mb([str(caches[count]), str(count), str(batch), reader])
                    results.append(
                        {"reader": reader, "images": count, "batch": batch,
                         "peak_rss_mb": round(rss), "wall_s": round(wall, 1)}
                    )  # fmt: skip
                    print(json.dumps(results[-1]), file=sys.stderr)
    out["runs"] = results
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
