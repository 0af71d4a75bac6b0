"""The training input pipeline: batched augmentation against the per-sample loader it replaced.

Both produce normalised, augmented [B, 3, H, W] batches from a uint8 split (the paper's random
horizontal flip and ±15° rotation): the replaced one image by image in a DataLoader (no
workers, as it ran), today's one batch at a time (ml.data.augment). No model: the samples/s of
the input alone, on this CPU, side by side.

    uv run python benchmarks/train_input.py --images 512 --size 256 --batch 64
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ml.data.augment import augment_batch  # noqa: E402
from ml.data.images import to_model_input  # noqa: E402


class PerSample(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """The replaced pipeline: torchvision's transforms, one image at a time."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels
        self.augment = v2.Compose([v2.RandomHorizontalFlip(), v2.RandomRotation(15)])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return to_model_input(self.augment(self.images[i].unsqueeze(0)))[0], self.labels[i]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    images = torch.randint(0, 256, (args.images, args.size, args.size), dtype=torch.uint8)
    labels = torch.zeros(args.images, 20)
    loader = DataLoader(PerSample(images, labels), batch_size=args.batch, shuffle=True,
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    t = time.perf_counter()
    for x, _ in loader:
        assert x.shape[1:] == (3, args.size, args.size)
    before = time.perf_counter() - t
    generator = torch.Generator().manual_seed(0)
    t = time.perf_counter()
    order = torch.randperm(args.images, generator=generator)
    for first in range(0, args.images, args.batch):
        rows = order[first : first + args.batch]
        x = to_model_input(augment_batch(images[rows], generator))
        assert x.shape[1:] == (3, args.size, args.size)
    after = time.perf_counter() - t
    print(json.dumps({
        "images": args.images, "size": args.size, "batch": args.batch, "threads": torch.get_num_threads(),
        "per_sample_loader_samples_per_s": round(args.images / before, 1),
        "batched_samples_per_s": round(args.images / after, 1),
        "speedup": round(before / after, 2),
        "per_sample_ms": round(1000 * before / args.images, 2),
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
