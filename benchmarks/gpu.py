"""ResNet-50 at 256 px on synthetic data: training and inference images/s, and the device's use.

Runs the engine's own training step (batches gathered from a uint8 split, augmented whole on
the device, channels_last, bf16 autocast on CUDA) and its inference step (the split on the
device as uint8, normalised there), and samples the GPU's utilisation with nvidia-smi while
each runs. On a machine without CUDA it runs on the CPU (give small numbers), which checks the
script, not the GPU.

    uv run python benchmarks/gpu.py --images 4096 --batch 256 --steps 30
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ml.data.images import SplitData, to_model_input  # noqa: E402
from ml.models import create_model  # noqa: E402
from ml.train import gather_batch, train_step  # noqa: E402


class Utilisation:
    """nvidia-smi's GPU utilisation, sampled every 0.2 s while in use (None without one)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.smi = shutil.which("nvidia-smi")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(  # noqa: S603 - nvidia-smi found on PATH, fixed arguments
                [str(self.smi), "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if out.returncode == 0 and out.stdout.strip():
                self.samples.append(float(out.stdout.split()[0]))
            self._stop.wait(0.2)

    def __enter__(self) -> Utilisation:
        if self.smi:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def mean(self) -> float | None:
        return round(sum(self.samples) / len(self.samples), 1) if self.samples else None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30, help="training steps measured")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--model", default="resnet50")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(
        0, 256, (args.images, args.size, args.size), dtype=torch.uint8, generator=generator
    )
    labels = (torch.rand(args.images, 20, generator=generator) < 0.1).float()
    model = create_model(args.model, 20).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = nn.BCEWithLogitsLoss()

    split = SplitData(
        tuple(map(str, range(args.images))), images, labels, tuple(map(str, range(20)))
    )

    def step() -> None:
        rows = torch.randint(0, args.images, (args.batch,), generator=generator)
        x, y = gather_batch(split, rows, device)
        train_step(model, optimizer, loss_fn, x, y, generator)

    model.train()
    for _ in range(args.warmup):
        step()
    sync(device)
    with Utilisation() as train_use:
        t = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync(device)
        train_s = time.perf_counter() - t
    model.eval()
    on_device = images.to(device)  # once, as uint8
    with torch.no_grad(), Utilisation() as infer_use:
        for s in range(0, min(args.images, args.batch * args.warmup), args.batch):
            model(to_model_input(on_device[s : s + args.batch]))
        sync(device)
        t = time.perf_counter()
        for s in range(0, args.images, args.batch):
            x = to_model_input(on_device[s : s + args.batch])
            torch.sigmoid(model(x.contiguous(memory_format=torch.channels_last) if cuda else x))
        sync(device)
        infer_s = time.perf_counter() - t
    print(json.dumps({
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "model": args.model, "size": args.size, "batch": args.batch,
        "train_images_per_s": round(args.steps * args.batch / train_s, 1),
        "train_gpu_utilisation_percent": train_use.mean(),
        "inference_images_per_s (fp32)": round(args.images / infer_s, 1),
        "inference_gpu_utilisation_percent": infer_use.mean(),
        "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2) if cuda else None,
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
