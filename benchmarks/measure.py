"""Running a benchmark stage in a fresh process and reading its peak memory from the kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def in_child(script: Path, args: list[str]) -> tuple[float, float, dict[str, Any]]:
    """Run `script --child ARGS` in a fresh interpreter: its peak resident set in MB (wait4's
    ru_maxrss, this child alone), its wall seconds, and the JSON object it printed last."""
    started = time.perf_counter()
    command = [sys.executable, str(script), "--child", *args]  # our own file and arguments
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
    assert proc.stdout is not None
    printed = proc.stdout.read()  # to the end: the child has exited or closed its output
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{script.name} --child {' '.join(args)} failed ({proc.returncode})")
    lines = [line for line in printed.splitlines() if line.startswith("{")]
    return (
        usage.ru_maxrss / 1024,
        time.perf_counter() - started,
        json.loads(lines[-1]) if lines else {},
    )


FULLRES = Path(__file__).resolve().parents[2] / "shared" / "data" / "nih-cxr14-fullres"


def full_size_sources(parser: Any) -> tuple[Any, list[Path]]:
    """Parse the arguments (with --data: the 1024-px NIH PNGs) and find those PNGs."""
    parser.add_argument("--data", type=Path, default=FULLRES, help="folder of full-size PNGs")
    args = parser.parse_args()
    sources = sorted(args.data.glob("*.png"))
    if not sources:
        raise SystemExit(f"no PNG images in {args.data}")
    return args, sources
