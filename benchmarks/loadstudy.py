"""The load generator's study and server: a throwaway database (SQLite or PostgreSQL), a
dataset of real-size images rendered ahead, an open study with its readers, and uvicorn run as
`piestudy serve` would run it (see benchmarks/load.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend import migrate  # noqa: E402
from backend.auth import service as auth_service  # noqa: E402
from backend.auth.models import Role  # noqa: E402
from backend.auth.schemas import UserCreate  # noqa: E402
from backend.datasets import service as datasets_service  # noqa: E402
from backend.db import make_engine, make_sessionmaker  # noqa: E402
from backend.piesets import service as piesets_service  # noqa: E402
from backend.studies import service as studies_service  # noqa: E402
from backend.studies.models import StudyStatus  # noqa: E402
from backend.studies.schemas import StudyCreate  # noqa: E402

LOAD_PASSWORD = "load-password-123"  # noqa: S105 - a throwaway account of a throwaway database
PG_ADMIN = os.environ.get(
    "PIESTUDY_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def database(kind: str, where: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{where / 'load.db'}"
        return
    name = f"piestudy_load_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


SHARED = ROOT.parent / "shared" / "data"
IMAGE_SETS = ("tiny", "nih", "chest")


def _originals(kind: str, where: Path) -> list[Path]:
    if kind == "tiny":
        rng = np.random.default_rng(0)
        out = []
        for i in range(8):
            path = where / f"tiny{i}.png"
            Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(path)
            out.append(path)
        return out
    nih = sorted((SHARED / "nih-cxr14-fullres").glob("*.png"))
    if not nih:
        raise SystemExit(f"--images {kind} needs the NIH images in {SHARED / 'nih-cxr14-fullres'}")
    if kind == "nih":
        return nih
    return [*nih * 3, SHARED / "dicom" / "RG1_UNCR.dcm"]  # one in ten a 1955x1841 DICOM


def _images(kind: str, where: Path, n: int) -> tuple[Path, list[str], float]:
    """n image files (hard links of the originals), with their renderings made ahead: the same
    files as rendering each one would give, made once per original and linked."""
    from backend.derivatives import DISPLAY, FULL, derivative_path, derived_image

    images, media = where / "images", where / "var" / "media"
    images.mkdir(parents=True, exist_ok=True)
    originals = _originals(kind, where)
    started = time.perf_counter()
    rendered = {}
    for o in originals:
        rendered[o] = {k: derived_image(o, k, media) for k in (DISPLAY, FULL)}
    seconds = time.perf_counter() - started
    names = []
    for i in range(n):
        o = originals[i % len(originals)]
        name = f"i{i}{o.suffix}"
        os.link(o, images / name)
        for k, made in rendered[o].items():
            target = derivative_path(images / name, k, media)
            os.link(made, target)
            if k is FULL:
                os.link(made.with_suffix(".json"), target.with_suffix(".json"))
        names.append(name)
    return images, names, seconds / len(originals)


def build_study(
    url: str, where: Path, readers: int, cases: int, images_kind: str = "tiny"
) -> tuple[list[str], float]:
    """A dataset, a PIE set, an open study with `readers` readers: their tokens, and the mean
    seconds one image's renderings took to make."""
    migrate.upgrade(url)
    n = readers * (cases + 2)  # pools with room for rounding
    images, names, render_seconds = _images(images_kind, where, n)
    lines = ["image,labels"]
    for i, name in enumerate(names):
        lines.append(f"{name},{'Effusion' if i % 3 else 'No Finding'}")
    (where / "labels.csv").write_text("\n".join(lines) + "\n")
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as s:
        owner = auth_service.create_user(
            s, UserCreate(username="load", password=LOAD_PASSWORD, role=Role.coordinator)
        )
        ds = datasets_service.import_dataset(
            s, name="load", fmt="plain", labels_files=[where / "labels.csv"], image_dir=images,
            classes=["No Finding", "Effusion"],
        )  # fmt: skip
        rng = np.random.default_rng(0)
        csv = "image,is_pie,score\n" + "".join(
            f"{name},{i % 2},{rng.uniform(-1, 1):.4f}\n" for i, name in enumerate(names)
        )
        ps = piesets_service.import_pie_set(
            s, dataset_id=ds.id, name="load", csv_bytes=csv.encode()
        )
        study = studies_service.create_study(
            s, owner,
            StudyCreate(name="load", pie_set_id=ps.id, cases_per_reader=cases, planned_readers=readers, seed=1),
        )  # fmt: skip
        studies_service.change_status(s, study, StudyStatus.open)
        enrolled = studies_service.enroll_readers(
            s, study.id, owner, [f"reader {i}" for i in range(readers)]
        )
        tokens = [e.token for e in enrolled]
    engine.dispose()
    return tokens, render_seconds


class Server:
    def __init__(self, url: str, where: Path, port: int, workers: int = 1):
        self.port, self.workers = port, workers
        self.env = {
            **os.environ, "PIESTUDY_DATABASE_URL": url, "PIESTUDY_VAR_DIR": str(where / "var"),
            "PIESTUDY_PUBLIC_URL": f"http://127.0.0.1:{port}", "PIESTUDY_ENV": "test",
            "PIESTUDY_WORKERS": str(workers),  # as `piestudy serve` sets it for its processes
            "PIESTUDY_PRERENDER": "false",  # made ahead by build_study, and timed there
        }  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-m", "uvicorn", "backend.main:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log", "--log-level", "warning",
             "--workers", str(self.workers)],
            cwd=ROOT, env=self.env, start_new_session=True,  # its own process group: see kill
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{self.port}/api/health", timeout=1).status_code
                    == 200
                ):
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def kill(self) -> None:
        """SIGKILL to the server and, with --workers, to every worker process it started."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
