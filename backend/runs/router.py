from __future__ import annotations

from fastapi import APIRouter, Request

from backend.auth.deps import ResearcherUser
from backend.db import IdPath, SessionDep
from backend.runs import service
from backend.runs.schemas import RunCreate, RunRead

router = APIRouter(prefix="/api/runs", tags=["runs"])


@router.post("", response_model=RunRead, status_code=201)
def start_run(
    request: Request, session: SessionDep, user: ResearcherUser, data: RunCreate
) -> RunRead:
    """Queue a PIE regeneration; a `piestudy worker` executes it."""
    run = service.create_run(session, user, data, request.app.state.settings)
    return RunRead.model_validate(run)


@router.get("", response_model=list[RunRead])
def list_runs(session: SessionDep, _user: ResearcherUser) -> list[RunRead]:
    return [RunRead.model_validate(r) for r in service.list_runs(session)]


@router.get("/{run_id}", response_model=RunRead)
def get_run(run_id: IdPath, session: SessionDep, _user: ResearcherUser) -> RunRead:
    return RunRead.model_validate(service.get_run(session, run_id))


@router.post("/{run_id}/cancel", response_model=RunRead)
def cancel_run(run_id: IdPath, session: SessionDep, _user: ResearcherUser) -> RunRead:
    return RunRead.model_validate(service.cancel_run(session, run_id))
