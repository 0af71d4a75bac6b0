"""A bounded load generator: simulated readers answering cases against a real uvicorn server.

Loopback only (the server listens on 127.0.0.1), a fixed number of requests and a time cap.
Each reader makes the reading page's own requests: it opens its link and loads its first case,
which it sees as its display copy first; meanwhile, on a second connection, it fetches that
case's full rendering, then all its cases in one request and each case's full rendering, one at a
time, as the page does for reading on offline (so every image is requested once: one a case, and
the first case's display copy). For each case it loads the case (a view), shows the full
rendering fetched ahead (or waits for it), looks at it for a while and saves an answer. A reader
looks at each case for `--think` seconds on average (uniform between half and one and a half
times it; the answer reports that time as its active seconds), and the readers start at random
moments within the first think time, so that all of them are reading at once. `--think 0` makes
every reader a client that never pauses: the server's capacity rather than a reading session.
Each answer is retried with the same answer id until the server acknowledges it. `--crash`
kills the server with SIGKILL once half of the answers are acknowledged and starts it again; the
readers keep retrying. Afterwards the database is checked: every acknowledged answer is there
exactly once, with the values acknowledged.

    uv run python benchmarks/load.py --db sqlite --readers 200 --think 5 --images nih
    uv run python benchmarks/load.py --db postgresql --readers 200 --think 5 --images nih
    uv run python benchmarks/load.py --db postgresql --readers 200 --crash
    uv run python benchmarks/load.py --db sqlite --readers 200 --think 0

--images: `tiny` (generated 32-px images), `nih` (the 1024-px NIH PNGs of ../shared/data),
`chest` (those, and one case in ten the 1955x1841 DICOM chest). Every image of the study is a
file of its own (a hard link of one of those), rendered ahead as the server does when a study
opens (the time is reported), so every image is requested once and no two readers share one.

Prints p50/p99 of answer saves and image loads as the readers saw them (the client shares the
machine's two cores with the server) and as the server timed them (its Server-Timing header),
throughput, failed attempts, and the check.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import uvloop
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.config import Settings  # noqa: E402
from backend.db import make_engine  # noqa: E402
from backend.reading.models import Answer, AnswerRevision  # noqa: E402
from benchmarks.http11 import Connection, Response  # noqa: E402
from benchmarks.loadstudy import (  # noqa: E402
    IMAGE_SETS,
    Server,
    build_study,
    database,
    free_port,
)

# A reader grades label agreement, image quality and difficulty of a chest X-ray: 15 s a case on
# average is brisk for a radiologist (the range is 7.5-22.5 s).
DEFAULT_THINK = 15.0
# the reading page's pacing of its fetching ahead (frontend/static/js/reader.js)
AHEAD, PACE_S = 2, 1.5


@dataclass
class Tally:
    saves: list[float] = field(default_factory=list)  # seconds, acknowledged answer saves
    images: list[float] = field(default_factory=list)  # display copies and full renderings
    displays: list[float] = field(default_factory=list)
    fulls: list[float] = field(default_factory=list)
    # the same requests as the server timed them (its Server-Timing header): without the client
    saves_server: list[float] = field(default_factory=list)
    images_server: list[float] = field(default_factory=list)
    requests: int = 0
    failed_attempts: int = 0
    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)  # answer id -> values


async def reader(
    port: int, token: str, cases: int, tally: Tally, deadline: float, seed: int, think: float
) -> None:
    rng = random.Random(seed)
    await asyncio.sleep(rng.uniform(0, think))
    c = Connection(port)
    # a second connection for what the page fetches ahead while the reader reads (a browser
    # opens several to one server)
    side = Connection(port)
    side.cookies = c.cookies  # one browser: one cookie jar

    async def attempt(
        method: str, url: str, body: Any = None, conn: Connection | None = None
    ) -> Response:
        """Retry until a non-5xx answer arrives (the server may be down, or restarting)."""
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError("the time cap was reached")
            tally.requests += 1
            try:
                r = await (conn or c).request(method, url, body)
                if r.status_code < 500:
                    return r
            except (OSError, EOFError, TimeoutError, ValueError, IndexError):
                pass  # refused, reset, cut short mid-response, or garbled by the kill
            tally.failed_attempts += 1
            await asyncio.sleep(0.05 + rng.random() * 0.2)

    async def image(url: str, kept: list[float], conn: Connection | None = None) -> None:
        t = time.perf_counter()
        r = await attempt("GET", url, conn=conn)
        assert r.status_code == 200 and r.content[:4] == b"\x89PNG", r.status_code
        took = time.perf_counter() - t
        kept.append(took)
        tally.images.append(took)
        tally.images_server.append(server_seconds(r))

    async def full(position: int, conn: Connection | None = None) -> None:
        await image(f"/api/reader/cases/{position}/image?size=full", tally.fulls, conn)

    fetched = [asyncio.Event() for _ in range(cases + 1)]  # [p]: case p's full rendering is here
    reading = [0]  # the case the reader is on
    moved_on = asyncio.Event()

    async def ahead() -> None:
        # the first case's full rendering, then every case in one request and each case's full
        # rendering, one at a time, in order: the next AHEAD at once, the rest paced, except
        # that the case after the one on screen is fetched at once (the page's prefetchFull)
        await full(1, side)
        r = await attempt("GET", "/api/reader/cases/ahead", conn=side)
        assert r.status_code == 200 and len(json.loads(r.content)["cases"]) == cases, r.text
        pause = 0.0
        for n, position in enumerate(range(2, cases + 1)):
            until = time.monotonic() + (pause if n >= AHEAD else 0.0)
            while position > reading[0] + 1 and (left := until - time.monotonic()) > 0:
                moved_on.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(moved_on.wait(), left)
            t = time.perf_counter()
            await full(position, side)
            fetched[position].set()
            pause = max(PACE_S, 20 * (time.perf_counter() - t))

    background: asyncio.Task[None] | None = None
    try:
        r = await attempt("GET", f"/r/{token}")
        assert r.status_code == 303, r.text
        for position in range(1, cases + 1):
            r = await attempt("GET", f"/api/reader/cases/{position}")
            assert r.status_code == 200, r.text
            if position == 1:  # shown before anything is fetched ahead: its display copy first
                await image(f"/api/reader/cases/{position}/image?size=display", tally.displays)
                background = asyncio.create_task(ahead())
            else:  # shown from the copy fetched ahead (or once the fetch under way ends)
                assert background is not None
                waiting = asyncio.ensure_future(fetched[position].wait())
                await asyncio.wait({waiting, background}, return_when=asyncio.FIRST_COMPLETED)
                if not fetched[position].is_set():  # the fetching failed: say why
                    waiting.cancel()
                    background.result()
            reading[0] = position
            moved_on.set()
            looked = rng.uniform(0.5, 1.5) * think
            await asyncio.sleep(looked)
            body: dict[str, Any] = {
                "answer_id": f"load-{uuid.uuid4().hex}", "agree": rng.random() < 0.5,
                "quality": rng.randint(1, 5), "difficulty": rng.randint(1, 5),
                "active_seconds": round(looked, 2),
            }  # fmt: skip
            t = time.perf_counter()
            r = await attempt("POST", f"/api/reader/cases/{position}/answer", body)
            assert r.status_code == 200, r.text
            tally.saves.append(time.perf_counter() - t)
            tally.saves_server.append(server_seconds(r))
            tally.acknowledged[body["answer_id"]] = body
        if background is not None:
            await background
    finally:
        if background is not None and not background.done():
            background.cancel()
        c.close()
        side.close()


def server_seconds(response: Response) -> float:
    """The server's own time to answer, from `Server-Timing: app;dur=<ms>`."""
    timing = response.headers.get("server-timing", "")
    if not timing.startswith("app;dur="):
        raise ValueError(f"no Server-Timing in the response: {timing!r}")
    return float(timing.removeprefix("app;dur=")) / 1000


def check(url: str, tally: Tally) -> dict[str, Any]:
    """Every acknowledged answer is stored exactly once, with its values."""
    engine = make_engine(url)
    with engine.connect() as c:
        rows = c.execute(
            select(
                AnswerRevision.client_answer_id, AnswerRevision.agree, AnswerRevision.quality,
                AnswerRevision.difficulty,
            )
        ).all()  # fmt: skip
        answers = c.scalar(select(func.count()).select_from(Answer)) or 0
    engine.dispose()
    stored: dict[str, int] = {}
    for row in rows:
        stored[row[0]] = stored.get(row[0], 0) + 1
    missing = [a for a in tally.acknowledged if a not in stored]
    duplicated = [a for a, n in stored.items() if n > 1]
    wrong = [
        row[0] for row in rows if row[0] in tally.acknowledged
        and (row[1], row[2], row[3]) != tuple(tally.acknowledged[row[0]][k] for k in ("agree", "quality", "difficulty"))
    ]  # fmt: skip
    return {
        "acknowledged": len(tally.acknowledged), "stored_revisions": len(rows),
        "answers": answers, "missing": len(missing), "duplicated": len(duplicated),
        "wrong_values": len(wrong),
    }  # fmt: skip


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q)) if values else float("nan")


def run_load(
    kind: str,
    readers: int,
    cases: int,
    *,
    think: float = DEFAULT_THINK,
    crash: bool = False,
    time_cap: float = 300.0,
    workers: int | None = None,
    images: str = "tiny",
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
        where = Path(tmp)
        tokens, render_seconds = build_study(url, where, readers, cases, images)
        # unset: as many processes as `piestudy serve` would start on this machine
        workers = workers or Settings(database_url=url).server_workers
        server = Server(url, where, free_port(), workers)
        server.start()
        tally = Tally()
        restarted_at = None

        async def main() -> None:
            nonlocal restarted_at
            deadline = time.monotonic() + time_cap
            tasks = [
                asyncio.create_task(reader(server.port, tok, cases, tally, deadline, i, think))
                for i, tok in enumerate(tokens)
            ]
            if crash:
                while len(tally.acknowledged) < readers * cases // 2:
                    await asyncio.sleep(0.01)
                restarted_at = len(tally.acknowledged)
                server.kill()
                await asyncio.to_thread(server.start)
            await asyncio.gather(*tasks)

        # The generator's own pauses would count as the server's latency: keep what set-up made
        # out of the collector's full sweeps.
        gc.collect()
        gc.freeze()
        started = time.perf_counter()
        try:
            # uvloop, as the server uses: the generator's own event loop is part of what it times
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(main())
        finally:
            server.stop()
        seconds = time.perf_counter() - started
        result = {
            "db": kind, "workers": workers, "readers": readers, "cases_per_reader": cases, "think_s": think, "crash": crash,
            "images": images, "rendering_ahead_s_per_image": round(render_seconds, 3),
            "killed_after_acknowledged": restarted_at, "seconds": round(seconds, 2),
            "requests": tally.requests, "throughput_rps": round(tally.requests / seconds, 1),
            "failed_attempts": tally.failed_attempts,
            "answer_save_ms": {"p50": round(pct(tally.saves, 50), 1), "p99": round(pct(tally.saves, 99), 1)},
            "image_load_ms": {"p50": round(pct(tally.images, 50), 1), "p99": round(pct(tally.images, 99), 1)},
            "display_copy_ms": {"p50": round(pct(tally.displays, 50), 1), "p99": round(pct(tally.displays, 99), 1)},
            "full_rendering_ms": {"p50": round(pct(tally.fulls, 50), 1), "p99": round(pct(tally.fulls, 99), 1)},
            "server_side_ms": {
                "answer_save": {"p50": round(pct(tally.saves_server, 50), 1), "p99": round(pct(tally.saves_server, 99), 1)},
                "image_load": {"p50": round(pct(tally.images_server, 50), 1), "p99": round(pct(tally.images_server, 99), 1)},
            },
            **check(url, tally),
        }  # fmt: skip
        return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--cases", type=int, default=10, help="cases per reader")
    parser.add_argument(
        "--think", type=float, default=DEFAULT_THINK,
        help="mean seconds a reader looks at a case before answering (0: no pause)",
    )  # fmt: skip
    parser.add_argument("--crash", action="store_true", help="kill -9 the server halfway")
    parser.add_argument("--images", choices=IMAGE_SETS, default="tiny", help="see above")
    parser.add_argument("--time-cap", type=float, default=300.0)
    parser.add_argument(
        "--workers", type=int, help="server processes (default: as `piestudy serve` would)"
    )
    args = parser.parse_args()
    result = run_load(
        args.db, args.readers, args.cases, think=args.think, crash=args.crash,
        time_cap=args.time_cap, workers=args.workers, images=args.images,
    )  # fmt: skip
    print(json.dumps(result, indent=1))
    ok = result["missing"] == result["duplicated"] == result["wrong_values"] == 0
    print(f"load db={args.db} workers={result['workers']} readers={args.readers} think={args.think} crash={args.crash} "
          f"images={args.images} answer_p99_ms={result['answer_save_ms']['p99']} "
          f"image_p99_ms={result['image_load_ms']['p99']} lossless={str(ok).lower()}")  # fmt: skip


if __name__ == "__main__":
    main()
