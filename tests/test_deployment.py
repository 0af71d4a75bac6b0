"""The deployment files stay valid (there is no container engine here: `config` validates alone)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.dbutil import need

ROOT = Path(__file__).resolve().parent.parent


def _compose(env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    if exe is None:
        need("docker-compose is not installed (Debian package docker-compose)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIESTUDY_")} | env_extra
    return subprocess.run(
        [str(exe), "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_compose_file_is_valid() -> None:
    result = _compose({"PIESTUDY_SECRET_KEY": "a-production-secret-of-enough-length-123"})
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_run_without_a_secret() -> None:
    result = _compose({})
    assert result.returncode != 0
    assert "PIESTUDY_SECRET_KEY" in result.stderr


def test_compose_runs_the_database_the_api_with_migrations_and_the_worker() -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        need("docker-compose is not installed (Debian package docker-compose)")
    env = {
        "PIESTUDY_SECRET_KEY": "a-production-secret-of-enough-length-123",
        "PATH": os.environ["PATH"],
    }
    out = subprocess.run(
        [str(exe), "config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    services = subprocess.run(
        [str(exe), "config", "--services"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    assert sorted(services) == ["api", "db", "worker"]
    assert "piestudy db upgrade && piestudy serve" in out
    assert "command:\n    - piestudy\n    - worker\n" in out
