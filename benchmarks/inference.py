"""Inference at the 20 sparsities: today's loop against the loop it replaced, side by side.

The replaced loop normalised every batch on the host, in float32, and copied it to the device,
for every sparsity. Today's moves the split to the device once per seed, as uint8, and
normalises each batch there. On this CPU the device is the host, so the time ratio shows the
host-side work saved; the bytes each loop sends to the device (what a GPU would wait for) are
counted from the tensors each one moves. The predictions must be identical.

    uv run python benchmarks/inference.py --images 500 --size 64 --model smallcnn
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ml.data.images import SplitData, to_model_input  # noqa: E402
from ml.models import create_model  # noqa: E402
from ml.predict import PruningConfig, predict_seed  # noqa: E402
from ml.prune import pruned_models, rank_weights  # noqa: E402


@torch.no_grad()
def replaced_loop(
    model: torch.nn.Module, data: SplitData, pruning: PruningConfig, batch: int
) -> np.ndarray:
    """The loop as it was: per sparsity, per batch, normalised on the host, then copied."""
    device = torch.device("cpu")
    ranking = rank_weights(model, method=pruning.method, min_keep=pruning.min_keep, seed=0)
    out = np.empty((len(pruning.sparsities), *data.labels.shape), dtype=np.float32)
    for ki, (_, pruned) in enumerate(pruned_models(model, ranking, pruning.sparsities)):
        pruned.eval()
        rows = [
            torch.sigmoid(pruned(to_model_input(data.images[s : s + batch]).to(device)))
            .float()
            .cpu()
            for s in range(0, len(data.images), batch)
        ]
        out[ki] = torch.cat(rows).numpy()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--model", default="smallcnn")
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    torch.manual_seed(0)
    images = torch.randint(0, 256, (args.images, args.size, args.size), dtype=torch.uint8)
    labels = torch.zeros(args.images, args.classes)
    data = SplitData(
        tuple(map(str, range(args.images))), images, labels, tuple(map(str, range(args.classes)))
    )
    model = create_model(args.model, args.classes).eval()
    pruning = PruningConfig()
    t = time.perf_counter()
    before = replaced_loop(model, data, pruning, args.batch)
    before_s = time.perf_counter() - t
    t = time.perf_counter()
    after, _ = predict_seed(model, 0, data, pruning, args.batch, torch.device("cpu"))
    after_s = time.perf_counter() - t
    k, pixels = len(pruning.sparsities), args.images * args.size**2
    print(json.dumps({
        "model": args.model, "images": args.images, "size": args.size, "sparsities": k,
        "replaced_loop_s": round(before_s, 2), "todays_loop_s": round(after_s, 2),
        "speedup": round(before_s / after_s, 3),
        "predictions_identical": bool(np.array_equal(before, after)),
        "bytes_to_device_per_seed_replaced": k * pixels * 3 * 4,
        "bytes_to_device_per_seed_today": pixels,
        "bytes_ratio": k * 3 * 4,
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
