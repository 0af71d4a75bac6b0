from __future__ import annotations

from fastapi import APIRouter, Request

from backend.auth.deps import ResearcherUser
from backend.db import IdPath, SessionDep
from backend.runs import repository, service
from backend.runs.schemas import RunCreate, RunRead, WorkerRead
from backend.timeutil import utcnow

router = APIRouter(prefix="/api/runs", tags=["runs"])


@router.post("", response_model=RunRead, status_code=201)
def start_run(
    request: Request, session: SessionDep, user: ResearcherUser, data: RunCreate
) -> RunRead:
    """Queue a PIE regeneration; a `piestudy worker` executes it."""
    run = service.create_run(session, user, data, request.app.state.settings)
    return service.describe(session, [run])[0]


@router.get("", response_model=list[RunRead])
def list_runs(session: SessionDep, _user: ResearcherUser) -> list[RunRead]:
    return service.describe(session, service.list_runs(session))


@router.get("/workers", response_model=list[WorkerRead])
def list_workers(session: SessionDep, _user: ResearcherUser) -> list[WorkerRead]:
    """The workers alive now (heard of within three of their heartbeats)."""
    return [WorkerRead.model_validate(w) for w in repository.alive_workers(session, utcnow())]


@router.get("/{run_id}", response_model=RunRead)
def get_run(run_id: IdPath, session: SessionDep, _user: ResearcherUser) -> RunRead:
    return service.describe(session, [service.get_run(session, run_id)])[0]


@router.post("/{run_id}/cancel", response_model=RunRead)
def cancel_run(run_id: IdPath, session: SessionDep, _user: ResearcherUser) -> RunRead:
    return service.describe(session, [service.cancel_run(session, run_id)])[0]
