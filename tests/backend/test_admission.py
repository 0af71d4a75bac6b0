"""Many requests at once through few threads.

Many readers: the admission slots of backend.db.get_session.

FastAPI runs a request's sync dependencies and its endpoint in separate worker-thread hops, and a
transaction begun in one hop stays open across the next. Without admission, on SQLite, requests
blocked on the write lock take every thread while the request holding the lock waits for one;
all of them fail after the busy timeout. Here 4 threads serve 24 readers saving at once, in
process (the load generator in benchmarks/load.py does the same against uvicorn).

One case: saves of one case at the same moment (a retry sent while the first attempt is still in
flight, two tabs) are serialized by the lock on the case's assignment, so each sees the others.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio.to_thread
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.reading.models import Answer, AnswerRevision
from backend.studies.models import Assignment
from tests.backend.conftest import StudySetup

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database

READERS = 24
THREADS = 4
CASES = 3


def test_more_readers_than_threads_all_answers_saved(
    app: FastAPI, make_study: Callable[..., StudySetup], session: Session
) -> None:
    setup = make_study(readers=READERS, n_images=200, n_pies=100, cases_per_reader=CASES + 1)
    jars = [dict(setup.reader_client(app, i).cookies.items()) for i in range(READERS)]

    async def reader(i: int, transport: httpx.ASGITransport) -> list[int]:
        statuses = []
        async with _client(transport, jars[i]) as c:
            for position in range(1, CASES + 1):
                body = {
                    "answer_id": f"admit-{i:03d}-{position}",
                    "agree": True,
                    "active_seconds": 2.0,
                }
                r = await c.post(f"/api/reader/cases/{position}/answer", json=body)
                statuses.append(r.status_code)
        return statuses

    async def main(transport: httpx.ASGITransport) -> list[list[int]]:
        return await asyncio.gather(*(reader(i, transport) for i in range(READERS)))

    statuses = _run(app, main)
    assert statuses == [[200] * CASES] * READERS
    stored = session.scalar(select(func.count()).select_from(AnswerRevision))
    session.rollback()
    assert stored == READERS * CASES


def test_saves_of_one_case_at_the_same_moment_each_see_the_others(
    app: FastAPI, make_study: Callable[..., StudySetup], session: Session
) -> None:
    setup = make_study(readers=1, n_images=200, n_pies=100)
    jar = dict(setup.reader_client(app, 0).cookies.items())
    same = {"answer_id": "twice-0001", "agree": True, "quality": 4, "active_seconds": 3.0}
    distinct = [
        {"answer_id": f"tab-{i:04d}", "difficulty": 1 + i % 5, "active_seconds": 1.0 + i}
        for i in range(TOGETHER)
    ]

    async def main(transport: httpx.ASGITransport) -> list[httpx.Response]:
        async with _client(transport, jar) as c:
            # the same answer sent again and again before the first is acknowledged (case 1);
            # different answers to one case from several tabs (case 2)
            return await asyncio.gather(
                *(c.post("/api/reader/cases/1/answer", json=same) for _ in range(TOGETHER)),
                *(c.post("/api/reader/cases/2/answer", json=body) for body in distinct),
            )

    responses = _run(app, main)
    assert [r.status_code for r in responses] == [200] * (2 * TOGETHER), [
        r.text for r in responses if r.status_code != 200
    ]
    replayed = [r.json()["replayed"] for r in responses[:TOGETHER]]
    assert replayed.count(False) == 1 and replayed.count(True) == TOGETHER - 1
    assert all(r.json()["answer"]["quality"] == 4 for r in responses[:TOGETHER])
    revisions = session.scalars(select(AnswerRevision.client_answer_id)).all()
    count = session.scalar(
        select(Answer.revision_count).join(Assignment).where(Assignment.position == 2)
    )
    session.rollback()
    assert sorted(revisions) == sorted(["twice-0001"] + [f"tab-{i:04d}" for i in range(TOGETHER)])
    assert count == TOGETHER


TOGETHER = 8
T = TypeVar("T")


def _client(transport: httpx.ASGITransport, cookies: dict[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", cookies=cookies)


def _run(app: FastAPI, main: Callable[[httpx.ASGITransport], Awaitable[T]]) -> T:
    """Run main in process against the app, with THREADS worker threads."""

    async def limited() -> T:
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        return await main(httpx.ASGITransport(app=app, raise_app_exceptions=False))

    # In a thread of its own: a browser test run earlier by the same test worker leaves
    # Playwright's event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, limited()).result()
