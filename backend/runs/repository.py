from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from backend.runs.models import Run, RunStatus, WorkerBeat


def add(session: Session, run: Run) -> None:
    session.add(run)
    session.flush()


def get(session: Session, run_id: int) -> Run | None:
    return session.get(Run, run_id)


def list_all(session: Session, limit: int = 200) -> Sequence[Run]:
    return session.scalars(select(Run).order_by(Run.id.desc()).limit(limit)).all()


class StaleRuns(NamedTuple):
    requeued: list[int]
    given_up: list[int]


def requeue_stale(
    session: Session, now: datetime, lease: timedelta, max_attempts: int
) -> StaleRuns:
    """Running runs whose worker has not been heard of for `lease` go back to the queue, or,
    after `max_attempts` attempts, end as failed (a run that takes its worker down every time,
    e.g. out of memory, would otherwise be tried for ever). Returns (re-queued, given up)."""
    cutoff = now - lease
    stale = or_(Run.heartbeat_at.is_(None), Run.heartbeat_at < cutoff)
    rows = session.execute(
        select(Run.id, Run.attempts)
        .where(Run.status == RunStatus.running, stale)
        .with_for_update(skip_locked=True)
    ).all()
    again = [run_id for run_id, attempts in rows if attempts < max_attempts]
    given_up = [run_id for run_id, attempts in rows if attempts >= max_attempts]
    guarded = (Run.status == RunStatus.running, stale)
    if again:
        session.execute(
            update(Run)
            .where(Run.id.in_(again), *guarded)
            .values(status=RunStatus.queued, worker_id=None, stage="re-queued")
        )
    if given_up:
        session.execute(
            update(Run)
            .where(Run.id.in_(given_up), *guarded)
            .values(
                status=RunStatus.failed,
                worker_id=None,
                stage=RunStatus.failed.value,
                finished_at=now,
                error=(
                    f"given up after {max_attempts} attempts: the worker of the last one fell"
                    f" silent for over {lease.total_seconds():g} s (killed, or out of memory?)"
                ),
            )
        )
    return StaleRuns(again, given_up)


def claim_next(session: Session, worker_id: str, now: datetime) -> int | None:
    """Take the oldest queued run for `worker_id`. PostgreSQL skips rows another worker has
    locked (FOR UPDATE SKIP LOCKED); on every database the UPDATE only succeeds while the run is
    still queued, so two workers can never both take it."""
    candidate = session.scalars(
        select(Run.id)
        .where(Run.status == RunStatus.queued)
        .order_by(Run.created_at, Run.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if candidate is None:
        return None
    taken = session.execute(
        update(Run)
        .where(Run.id == candidate, Run.status == RunStatus.queued)
        .values(
            status=RunStatus.running,
            worker_id=worker_id,
            heartbeat_at=now,
            attempts=Run.attempts + 1,
            stage="claimed",
            started_at=func.coalesce(Run.started_at, now),
        )
    )
    return candidate if taken.rowcount == 1 else None  # type: ignore[attr-defined]


def update_owned(session: Session, run_id: int, owner: str, **values: Any) -> bool:
    """Update a run only while worker `owner` still holds it; False when it does not."""
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.worker_id == owner, Run.status == RunStatus.running)
        .values(**values)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def get_fresh(session: Session, run_id: int) -> Run | None:
    """The run as the database has it now (not as this session last saw it)."""
    return session.get(Run, run_id, populate_existing=True)


def current_log(session: Session, run_id: int) -> str:
    return session.scalar(select(Run.log).where(Run.id == run_id)) or ""


def set_log(session: Session, run_id: int, log: str) -> None:
    session.execute(update(Run).where(Run.id == run_id).values(log=log))


def find_by_name(session: Session, name: str, statuses: Sequence[RunStatus]) -> Run | None:
    """The oldest run of a PIE set name in one of the statuses."""
    return session.scalars(
        select(Run).where(Run.name == name, Run.status.in_(statuses)).order_by(Run.id)
    ).first()


def requeue_if_running(session: Session, run_id: int) -> None:
    """Put a run that was left running (its worker gone with its process) back in the queue."""
    session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == RunStatus.running)
        .values(status=RunStatus.queued, worker_id=None)
    )


# ---------------------------------------------------------------- workers


def beat(
    session: Session, worker_id: str, now: datetime, *, host: str, pid: int, executor: str,
    heartbeat_s: float, run_id: int | None,
) -> None:  # fmt: skip
    """This worker is alive, idle (run_id None) or on a run; only the worker writes its row."""
    values = {"heartbeat_at": now, "run_id": run_id}
    updated = session.execute(update(WorkerBeat).where(WorkerBeat.id == worker_id).values(**values))
    if updated.rowcount == 0:  # type: ignore[attr-defined]
        session.add(
            WorkerBeat(
                id=worker_id,
                host=host,
                pid=pid,
                executor=executor,
                heartbeat_s=heartbeat_s,
                started_at=now,
                **values,
            )
        )
        session.flush()
    # rows of workers dead for a day (killed: they could not remove their own) go
    session.execute(delete(WorkerBeat).where(WorkerBeat.heartbeat_at < now - timedelta(days=1)))


def remove_worker(session: Session, worker_id: str) -> None:
    session.execute(delete(WorkerBeat).where(WorkerBeat.id == worker_id))


def alive_workers(session: Session, now: datetime) -> list[WorkerBeat]:
    """Workers heard of within three of their heartbeats (and 10 s at least)."""
    recent = session.scalars(
        select(WorkerBeat)
        .where(WorkerBeat.heartbeat_at >= now - timedelta(hours=1))
        .order_by(WorkerBeat.started_at)
    ).all()
    return [
        w for w in recent if now - w.heartbeat_at <= timedelta(seconds=max(3 * w.heartbeat_s, 10))
    ]


def queue_positions(session: Session) -> dict[int, int]:
    """Each queued run's place in the queue (1: the next one a worker takes), in claim order."""
    queued = session.scalars(
        select(Run.id).where(Run.status == RunStatus.queued).order_by(Run.created_at, Run.id)
    ).all()
    return {run_id: place for place, run_id in enumerate(queued, start=1)}
