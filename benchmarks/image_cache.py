"""The image cache against decoding every run: parallel against serial decoding into the cache,
and what a second run costs (it decodes nothing).

Uses the full-size NIH images in ../shared/data/nih-cxr14-fullres (1024 x 1024 PNGs), each
listed many times, so that every decode is a real one of a real file; the cache is written to a
temporary folder.

    uv run python benchmarks/image_cache.py --images 300 --size 256
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

from benchmarks.measure import full_size_sources  # noqa: E402
from ml.data.cache import open_cache  # noqa: E402
from ml.data.images import decode_images  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", type=int, default=256)
    args, sources = full_size_sources(parser)
    paths = [sources[i % len(sources)] for i in range(args.images)]
    ids = [f"image-{i:06d}" for i in range(args.images)]
    cores = os.cpu_count() or 1
    out: dict[str, object] = {
        "images": args.images,
        "size": args.size,
        "cores": cores,
        "source": str(args.data),
    }
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        serial = open_cache(Path(tmp) / "serial", ids, paths, args.size, workers=1)
        serial_s = time.perf_counter() - t
        t = time.perf_counter()
        parallel = open_cache(Path(tmp) / "parallel", ids, paths, args.size, workers=cores)
        parallel_s = time.perf_counter() - t
        t = time.perf_counter()
        again = open_cache(Path(tmp) / "parallel", ids, paths, args.size, workers=cores)
        again_s = time.perf_counter() - t
        t = time.perf_counter()
        decode_images(paths, args.size)  # what every run did before: threads, into RAM
        ram_s = time.perf_counter() - t
        out |= {
            "serial_decode_s": round(serial_s, 2),
            "serial_ms_per_image": round(1000 * serial_s / args.images, 1),
            f"parallel_decode_s ({cores} processes)": round(parallel_s, 2),
            "parallel_over_serial_speedup": round(serial_s / parallel_s, 2),
            "second_run_decoded": again.decoded,
            "second_run_s": round(again_s, 3),
            "first_run_decoded": serial.decoded + parallel.decoded - args.images,
            "decode_in_ram_every_run_s (threads, before the cache)": round(ram_s, 2),
            "cache_mb": round(args.images * args.size**2 / 1e6, 1),
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
