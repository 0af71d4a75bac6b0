"""The load generator of benchmarks/load.py, small: many readers at once against a real uvicorn
server on this pass's database; then the same with the server killed (SIGKILL) halfway and
restarted while the readers retry. No acknowledged answer may be lost, duplicated or altered.
(The figures for 200 readers come from `python benchmarks/load.py`; see the README.)"""

from __future__ import annotations

import pytest

from benchmarks.load import run_load
from tests.dbutil import need, pg_admin_url, postgres_available, selected_backend

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database


def backend() -> str:
    kind = selected_backend()
    if kind == "postgresql" and not postgres_available(pg_admin_url()):
        need("PostgreSQL is not reachable")
    return kind


@pytest.mark.slow
def test_concurrent_readers_lose_nothing() -> None:
    result = run_load(backend(), readers=40, cases=4, think=0, time_cap=120)
    assert result["acknowledged"] == 160 == result["stored_revisions"] == result["answers"]
    assert result["missing"] == result["duplicated"] == result["wrong_values"] == 0
    assert result["failed_attempts"] == 0


@pytest.mark.slow
def test_a_killed_server_loses_no_acknowledged_answer() -> None:
    result = run_load(backend(), readers=20, cases=6, think=0, crash=True, time_cap=180)
    assert result["killed_after_acknowledged"] is not None
    assert result["acknowledged"] == 120 == result["stored_revisions"] == result["answers"]
    assert result["missing"] == result["duplicated"] == result["wrong_values"] == 0
