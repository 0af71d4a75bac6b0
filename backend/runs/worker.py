"""`piestudy worker`: executes queued runs.

A worker claims the oldest queued run atomically (repository.claim_next), then works on it while
a heartbeat thread reports its stage, progress and log every `heartbeat_s` seconds and reads
back whether the run was cancelled. A run whose worker falls silent for `lease_s` seconds (it
died, or its machine did) goes back to the queue, and the next worker resumes it from its work
folder: finished seeds are not trained again. After MAX_ATTEMPTS attempts it fails instead. A
worker that is stopped (SIGTERM, Ctrl-C) puts its run back in the queue at once.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import timedelta
from types import FrameType
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from backend.config import Settings
from backend.errors import AppError
from backend.piesets.service import import_pie_set
from backend.runs import repository, service
from backend.runs.models import MAX_ATTEMPTS, RunStatus
from backend.timeutil import utcnow
from ml.executors import RunCancelled, make_executor
from ml.regenerate import regenerate


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class _Context:
    """ml.executors.RunContext for one run: buffers stage, progress and log lines, which the
    heartbeat thread writes; `check` raises once the run is cancelled or no longer ours."""

    def __init__(self, worker: Worker, run_id: int):
        self.worker = worker
        self.run_id = run_id
        self.lock = threading.Lock()
        self.stage_name = "starting"
        self.fraction = 0.0
        self.pending: list[str] = []
        self.stop = threading.Event()  # cancel, shutdown or lost lease
        self.reason = ""
        self.beating = threading.Event()

    def stage(self, name: str, fraction: float) -> None:
        with self.lock:
            if name != self.stage_name:
                self.pending.append(f"stage: {name}")
            self.stage_name, self.fraction = name, max(0.0, min(1.0, fraction))

    def log(self, line: str) -> None:
        with self.lock:
            self.pending.append(line)
        self.worker.say(f"run {self.run_id}: {line}")

    def check(self) -> None:
        if self.stop.is_set():
            raise RunCancelled(self.reason)

    def halt(self, reason: str) -> None:
        if not self.stop.is_set():
            self.reason = reason
            self.stop.set()

    def beat(self) -> None:
        """One heartbeat: write what is pending, read back the cancel flag."""
        with self.lock:
            lines, self.pending = self.pending, []
            stage, fraction = self.stage_name, self.fraction
        with self.worker.sessions.begin() as session:
            run = repository.get_fresh(session, self.run_id)
            values: dict[str, Any] = {
                "heartbeat_at": utcnow(),
                "stage": stage,
                "progress": fraction,
            }
            if lines and run is not None:
                values["log"] = service.append_log(run.log, lines)
            owned = repository.update_owned(session, self.run_id, self.worker.id, **values)
            cancel = run is not None and run.cancel_requested
            self.worker.register(session, self.run_id if owned else None)
        if not owned:
            self.halt("lost")
        elif cancel:
            self.halt("cancelled")

    def _heartbeat_loop(self) -> None:
        while not self.beating.wait(self.worker.heartbeat_s):
            try:
                self.beat()
            except Exception as exc:  # a database hiccup: try again next beat
                self.worker.say(f"run {self.run_id}: heartbeat failed: {exc}")

    def start_heartbeats(self) -> None:
        self.beater = threading.Thread(
            target=self._heartbeat_loop, name=f"heartbeat-{self.run_id}", daemon=True
        )
        self.beater.start()

    def end_heartbeats(self) -> None:
        self.beating.set()
        self.beater.join()


class Worker:
    def __init__(
        self, sessions: sessionmaker[Session], settings: Settings, *, executor: str = "local",
        ray_address: str | None = None, lease_s: float = 30.0, heartbeat_s: float = 2.0,
        poll_s: float = 1.0, max_attempts: int = MAX_ATTEMPTS, worker_id: str | None = None,
        say: Callable[[str], None] = print,
    ) -> None:  # fmt: skip
        if heartbeat_s <= 0 or lease_s <= 2 * heartbeat_s:
            raise ValueError("the lease must be longer than two heartbeats")
        if max_attempts < 1:
            raise ValueError("a run needs at least one attempt")
        self.max_attempts = max_attempts
        self.sessions = sessions
        self.settings = settings
        self.executor = make_executor(executor, ray_address)
        self.lease_s, self.heartbeat_s, self.poll_s = lease_s, heartbeat_s, poll_s
        self.id = worker_id or default_worker_id()
        self.say = say
        self.stopping = threading.Event()
        self.current: _Context | None = None
        self._last_idle_beat = -math.inf

    # -------------------------------------------------------------- the loop

    def serve(self, *, drain: bool = False) -> int:
        """Execute runs until stopped (or, with drain, until none is queued); returns how many
        runs this worker executed."""
        done = 0
        try:
            while not self.stopping.is_set():
                self.idle_beat()
                run_id = self.claim()
                if run_id is None:
                    if drain:
                        break
                    self.stopping.wait(self.poll_s)
                    continue
                self.execute(run_id)
                done += 1
        finally:
            self.unregister()
        return done

    # -------------------------------------------------------------- being seen alive

    def register(self, session: Session, run_id: int | None) -> None:
        """This worker's heartbeat row (the run pages tell from these whether any is alive)."""
        repository.beat(
            session, self.id, utcnow(), host=socket.gethostname(), pid=os.getpid(),
            executor=self.executor.name, heartbeat_s=self.heartbeat_s, run_id=run_id,
        )  # fmt: skip

    def idle_beat(self) -> None:
        """Between runs: a heartbeat every `heartbeat_s` while the queue is looked at."""
        now = time.monotonic()
        if now - self._last_idle_beat < self.heartbeat_s:
            return
        self._last_idle_beat = now
        try:
            with self.sessions.begin() as session:
                self.register(session, None)
        except Exception as exc:  # a database hiccup: the next look tries again
            self.say(f"worker {self.id}: heartbeat failed: {exc}")

    def unregister(self) -> None:
        try:
            with self.sessions.begin() as session:
                repository.remove_worker(session, self.id)
        except Exception as exc:  # gone with the database: its row ages out
            self.say(f"worker {self.id}: could not sign off: {exc}")

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            self.say(f"worker {self.id}: {signal.Signals(signum).name}, stopping")
            self.stopping.set()
            if self.current is not None:
                self.current.halt("shutdown")

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def claim(self) -> int | None:
        now = utcnow()
        with self.sessions.begin() as session:
            again, given_up = repository.requeue_stale(
                session, now, timedelta(seconds=self.lease_s), self.max_attempts
            )
            for stale in again:
                self._log(
                    session, stale, f"re-queued: its worker was silent for over {self.lease_s:g} s"
                )
                self.say(f"run {stale}: re-queued (lease expired)")
            for stale in given_up:
                self._log(
                    session,
                    stale,
                    f"failed: its worker fell silent ({self.max_attempts} attempts made)",
                )
                self.say(f"run {stale}: failed (lease expired on its last attempt)")
            run_id = repository.claim_next(session, self.id, now)
            if run_id is not None:
                run = repository.get_fresh(session, run_id)
                attempts = run.attempts if run else "?"
                self._log(session, run_id, f"claimed by worker {self.id} (attempt {attempts})")
        return run_id

    @staticmethod
    def _log(session: Session, run_id: int, line: str) -> None:
        repository.set_log(session, run_id, _log_plus(session, run_id, [line]))

    # -------------------------------------------------------------- one run

    def execute(self, run_id: int) -> RunStatus | None:
        """Work on a claimed run until it ends; returns its final status (None if it was lost
        or handed back to the queue)."""
        ctx = _Context(self, run_id)
        self.current = ctx
        ctx.start_heartbeats()
        try:
            return self._execute(ctx)
        except Exception as exc:
            # The run's last writes failed (the database went away, or a bug). The worker goes on
            # with the next run; this one ends as failed if the database takes that, and if not,
            # its lease runs out and it goes back to the queue.
            ctx.end_heartbeats()
            self.say(f"run {run_id}: could not be finished:\n{traceback.format_exc(limit=6)}")
            try:
                error = f"while finishing the run: {type(exc).__name__}: {exc}"
                return self._finish(ctx, RunStatus.failed, error=error)
            except Exception as again:
                self.say(f"run {run_id}: not marked failed either ({again}); left to its lease")
                return None
        finally:
            self.current = None

    def _execute(self, ctx: _Context) -> RunStatus | None:
        run_id = ctx.run_id
        try:
            with self.sessions() as session:
                run = service.get_run(session, run_id)
                params = service.run_params(run)
                inputs = service.dataset_inputs(
                    session, run.dataset_id, self.settings.resolved_media_dir / "image-cache"
                )
                dataset_id, name, created_by = run.dataset_id, run.name, run.created_by_id
                executor = (
                    self.executor
                    if run.executor == self.executor.name
                    else make_executor(run.executor)
                )
            ctx.log(f"source {params.source}, executor {executor.name}, seeds {list(params.seeds)}")
            work = service.work_dir(self.settings, run_id)
            result = regenerate(
                params, inputs, work, ctx, executor=executor,
                allowed_roots=[r.resolve() for r in self.settings.import_roots], run_id=run_id,
            )  # fmt: skip
            ctx.check()
        except RunCancelled:
            return self._stopped(ctx)
        except (ValueError, AppError, FileNotFoundError) as exc:
            message = exc.message if isinstance(exc, AppError) else str(exc)
            return self._finish(ctx, RunStatus.failed, error=message)
        except Exception as exc:
            detail = traceback.format_exc(limit=6)
            ctx.log(detail.rstrip())
            return self._finish(ctx, RunStatus.failed, error=f"{type(exc).__name__}: {exc}")
        provenance = {
            "run_id": run_id, "run_source": params.source, "executor": executor.name,
            "worker": self.id, "store": str(result.store_path), "timings": result.timings,
            "summary": {k: v for k, v in result.summary.items() if k != "undefined_images"},
        }  # fmt: skip
        parameters = {k: v for k, v in params.to_dict().items() if v is not None}
        return self._finish(
            ctx, RunStatus.succeeded, timings=result.timings,
            result=lambda session: import_pie_set(
                session, dataset_id=dataset_id, name=name, csv_bytes=result.pieset_csv,
                source_name=f"run-{run_id}-pies.csv", parameters=parameters, provenance=provenance,
                created_by_id=created_by, report_html=result.report_html,
                media_dir=self.settings.resolved_media_dir,
            ).id,
        )  # fmt: skip

    def _stopped(self, ctx: _Context) -> RunStatus | None:
        ctx.end_heartbeats()
        if ctx.reason == "cancelled":
            return self._finish(ctx, RunStatus.cancelled)
        if ctx.reason == "shutdown":
            with self.sessions.begin() as session:
                log = _log_plus(session, ctx.run_id, ["worker stopped: back in the queue"])
                repository.update_owned(
                    session, ctx.run_id, self.id, status=RunStatus.queued, worker_id=None,
                    stage="re-queued", log=log,
                )  # fmt: skip
            self.say(f"run {ctx.run_id}: handed back to the queue")
            return None
        self.say(f"run {ctx.run_id}: another worker holds it now; stopped here")
        return None

    def _finish(
        self, ctx: _Context, status: RunStatus, *,
        error: str | None = None, timings: dict[str, float] | None = None,
        result: Callable[[Session], int] | None = None,
    ) -> RunStatus | None:  # fmt: skip
        """The run's last write, in one transaction with its result: the PIE set is created only
        if this worker still holds the run, and the run ends only if the PIE set was created."""
        ctx.end_heartbeats()
        with ctx.lock:
            lines = [*ctx.pending, f"{status.value}" + (f": {error}" if error else "")]
            ctx.pending = []
        with self.sessions() as session:
            try:
                with session.begin():
                    values: dict[str, Any] = {
                        "status": status, "stage": status.value, "finished_at": utcnow(),
                        "heartbeat_at": utcnow(), "error": error,
                    }  # fmt: skip
                    if timings is not None:
                        values["timings"] = timings
                    if status == RunStatus.succeeded:
                        values["progress"] = 1.0
                    if result is not None:
                        values["result_pie_set_id"] = result(session)
                    values["log"] = _log_plus(session, ctx.run_id, lines)
                    if not repository.update_owned(session, ctx.run_id, self.id, **values):
                        raise _LostRunError
            except _LostRunError:
                self.say(f"run {ctx.run_id}: another worker holds it now; result dropped")
                return None
            except AppError as exc:  # the PIE set was refused (e.g. images not in the dataset)
                return self._finish(ctx, RunStatus.failed, error=exc.message)
        self.say(f"run {ctx.run_id}: {status.value}" + (f" ({error})" if error else ""))
        return status


class _LostRunError(Exception):
    pass


def _log_plus(session: Session, run_id: int, lines: list[str]) -> str:
    """The run's log as it is in the database, with `lines` added."""
    return service.append_log(repository.current_log(session, run_id), lines)
