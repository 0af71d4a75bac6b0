"""PIE regeneration runs: queued here, executed by `piestudy worker` (backend.runs.worker)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.config import Settings
from backend.datasets import repository as datasets_repo
from backend.datasets.service import get_dataset
from backend.errors import ConflictError, InvalidInputError, NotFoundError
from backend.runs import repository
from backend.runs.models import FINISHED, Run, RunStatus
from backend.runs.schemas import RunCreate, RunRead
from backend.timeutil import utcnow
from ml.data.labels import LabelRecord
from ml.regenerate import DatasetInputs
from ml.runparams import RunParams

LOG_LINES = 200


def run_params(run: Run) -> RunParams:
    return RunParams.from_dict({**run.params, "source": run.source})


def work_dir(settings: Settings, run_id: int) -> Path:
    """Where a run keeps what it computes (checkpoints, predictions, store, report)."""
    return settings.resolved_media_dir / "runs" / str(run_id)


def _check_paths(params: RunParams, settings: Settings) -> None:
    for name in ("store_path", "reference_dir", "reference_labels"):
        value = getattr(params, name)
        if not value:
            continue
        path = Path(value)
        if not path.is_absolute():
            raise InvalidInputError(f"params.{name}: give an absolute path on the server")
        if not settings.may_read(path):
            raise InvalidInputError(
                f"params.{name}: {value} is outside the folders this server may read "
                "(PIESTUDY_IMPORT_ROOTS)"
            )
        if not path.exists():
            raise InvalidInputError(f"params.{name}: {value} does not exist")


def create_run(session: Session, user: User, data: RunCreate, settings: Settings) -> Run:
    dataset = get_dataset(session, data.dataset_id)
    try:
        params = RunParams(source=data.source, **data.params.model_dump())
    except ValidationError as exc:  # what the source needs (the options were checked already)
        raise InvalidInputError(
            "; ".join(f"params.{e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
        ) from exc
    _check_paths(params, settings)
    run = Run(
        dataset_id=dataset.id,
        name=data.name,
        source=data.source,
        executor=data.executor,
        params=params.options(),
        created_by_id=user.id,
        log=f"{utcnow():%Y-%m-%d %H:%M:%S} queued by {user.username}\n",
    )
    repository.add(session, run)
    return run


def get_run(session: Session, run_id: int) -> Run:
    run = repository.get(session, run_id)
    if run is None:
        raise NotFoundError(f"run {run_id} not found")
    return run


def list_runs(session: Session) -> Sequence[Run]:
    return repository.list_all(session)


START_A_WORKER = (
    "start one on the server: `uv run piestudy worker` (it executes queued runs one at a time; "
    "`make demo` serves with one)"
)


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe(session: Session, runs: Sequence[Run]) -> list[RunRead]:
    """The runs as the API and the run page show them: with a queued run's place in the queue,
    the workers alive, and a hint where a live run would not move."""
    workers = repository.alive_workers(session, utcnow())
    places = (
        repository.queue_positions(session)
        if any(r.status == RunStatus.queued for r in runs)
        else {}
    )
    busy = [w.run_id for w in workers if w.run_id is not None]
    out = []
    for run in runs:
        read = RunRead.model_validate(run)
        read.workers_alive = len(workers)
        read.queue_position = places.get(run.id)
        if run.status == RunStatus.queued and not workers:
            read.hint = f"No worker is running, so this run waits in the queue: {START_A_WORKER}."
        elif run.status == RunStatus.queued and len(busy) == len(workers):
            on = ", ".join(f"run {r}" for r in busy)
            read.hint = (
                f"{ordinal(read.queue_position or 1)} in the queue: every worker alive is busy"
                f" ({on}); it starts when one is free, or {START_A_WORKER}."
            )
        elif run.status == RunStatus.running and not any(w.run_id == run.id for w in workers):
            read.hint = (
                "Its worker has not been heard of lately (stopped or killed?): the run goes back "
                f"to the queue when its lease ends, for the next worker; if none is running, {START_A_WORKER}."
            )
        out.append(read)
    return out


def cancel_run(session: Session, run_id: int) -> Run:
    """A queued run is cancelled at once; a running one is asked to stop (its worker sees it
    with its next heartbeat, within seconds)."""
    run = get_run(session, run_id)
    if run.status in FINISHED:
        raise ConflictError(f"run {run_id} has already {run.status.value}")
    if run.status == RunStatus.queued:
        run.status = RunStatus.cancelled
        run.stage = "cancelled"
        run.finished_at = utcnow()
    else:
        run.cancel_requested = True
    run.log = append_log(run.log, ["cancel requested"])
    session.flush()
    return run


def append_log(log: str, lines: Sequence[str]) -> str:
    stamp = f"{utcnow():%Y-%m-%d %H:%M:%S}"
    kept = (log.splitlines() + [f"{stamp} {line}" for line in lines])[-LOG_LINES:]
    return "\n".join(kept) + "\n"


def dataset_inputs(
    session: Session, dataset_id: int, cache_root: Path | None = None
) -> DatasetInputs:
    """What a run needs of the dataset; with `cache_root`, its image cache is cache_root/dataset-{id}
    (shared by every run and seed of the dataset)."""
    dataset = get_dataset(session, dataset_id)
    rows = datasets_repo.all_images(session, dataset.id)
    records = tuple(
        LabelRecord(
            external_id=i.external_id,
            path=i.file_path,
            labels=tuple(i.labels),
            patient_id=i.patient_id,
            split=i.split,
            meta={},
            source="database",
            line=n,
        )
        for n, i in enumerate(rows, start=1)
    )
    cache = cache_root / f"dataset-{dataset.id}" if cache_root is not None else None
    return DatasetInputs(
        dataset.name, tuple(dataset.classes), Path(dataset.image_root), records, cache
    )
