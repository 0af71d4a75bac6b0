from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request

from backend.auth.deps import CoordinatorUser
from backend.config import Settings
from backend.db import IdPath, SessionDep
from backend.reading.renderings import render_study
from backend.studies import service
from backend.studies.models import StudyStatus
from backend.studies.schemas import (
    AllocationPreview,
    AllocationPreviewRequest,
    AssignmentRead,
    EnrollRequest,
    MemberAdd,
    ReaderInvitation,
    ReaderProgress,
    ReaderRead,
    StatusChange,
    StudyCreate,
    StudyRead,
    StudyUpdate,
)

router = APIRouter(prefix="/api/studies", tags=["studies"])


@router.get("", response_model=list[StudyRead])
def list_studies(session: SessionDep, user: CoordinatorUser) -> list[StudyRead]:
    return [StudyRead.model_validate(s) for s in service.list_studies(session, user)]


@router.post("/preview", response_model=AllocationPreview)
def preview(
    body: AllocationPreviewRequest, session: SessionDep, _user: CoordinatorUser
) -> AllocationPreview:
    return service.preview(session, body.pie_set_id, body)


@router.post("", response_model=StudyRead, status_code=201)
def create_study(body: StudyCreate, session: SessionDep, user: CoordinatorUser) -> StudyRead:
    return StudyRead.model_validate(service.create_study(session, user, body))


@router.get("/{study_id}", response_model=StudyRead)
def get_study(study_id: IdPath, session: SessionDep, user: CoordinatorUser) -> StudyRead:
    return StudyRead.model_validate(service.visible_study(session, user, study_id))


@router.patch("/{study_id}", response_model=StudyRead)
def update_study(
    study_id: IdPath, body: StudyUpdate, session: SessionDep, user: CoordinatorUser
) -> StudyRead:
    study = service.visible_study(session, user, study_id)
    return StudyRead.model_validate(service.update_study(session, study, body))


@router.delete("/{study_id}", status_code=204)
def delete_study(study_id: IdPath, session: SessionDep, user: CoordinatorUser) -> None:
    service.delete_study(session, service.visible_study(session, user, study_id))


def _prerender(request: Request, tasks: BackgroundTasks, study_id: int) -> None:
    """After the response (and its commit): the study's renderings, made ahead for readers."""
    settings: Settings = request.app.state.settings
    if settings.prerender:
        tasks.add_task(
            render_study, request.app.state.read_sessionmaker, study_id, settings.resolved_media_dir
        )


@router.post("/{study_id}/status", response_model=StudyRead)
def change_status(
    study_id: IdPath,
    body: StatusChange,
    request: Request,
    tasks: BackgroundTasks,
    session: SessionDep,
    user: CoordinatorUser,
) -> StudyRead:
    study = service.visible_study(session, user, study_id, for_update=True)
    changed = StudyRead.model_validate(service.change_status(session, study, body.status))
    if changed.status == StudyStatus.open:
        _prerender(request, tasks, study_id)
    return changed


@router.get("/{study_id}/members", response_model=list[int])
def list_members(study_id: IdPath, session: SessionDep, user: CoordinatorUser) -> list[int]:
    return list(service.member_ids(session, service.visible_study(session, user, study_id)))


@router.post("/{study_id}/members", status_code=204)
def add_member(
    study_id: IdPath, body: MemberAdd, session: SessionDep, user: CoordinatorUser
) -> None:
    service.add_member(session, service.visible_study(session, user, study_id), body.username)


@router.delete("/{study_id}/members/{user_id}", status_code=204)
def remove_member(
    study_id: IdPath, user_id: IdPath, session: SessionDep, user: CoordinatorUser
) -> None:
    service.remove_member(session, service.visible_study(session, user, study_id), user_id)


@router.get("/{study_id}/readers", response_model=list[ReaderRead])
def list_readers(study_id: IdPath, session: SessionDep, user: CoordinatorUser) -> list[ReaderRead]:
    study = service.visible_study(session, user, study_id)
    return [ReaderRead.model_validate(r) for r in service.list_readers(session, study)]


@router.post("/{study_id}/readers", response_model=list[ReaderInvitation], status_code=201)
def enroll_readers(
    study_id: IdPath,
    body: EnrollRequest,
    request: Request,
    tasks: BackgroundTasks,
    session: SessionDep,
    user: CoordinatorUser,
) -> list[ReaderInvitation]:
    settings: Settings = request.app.state.settings
    _prerender(request, tasks, study_id)
    enrolled = service.enroll_readers(
        session,
        study_id,
        user,
        body.display_names,
        allow_duplicate_names=body.allow_duplicate_names,
    )
    return [
        ReaderInvitation(
            reader=ReaderRead.model_validate(e.reader),
            token=e.token,
            invitation_url=service.invitation_url(settings, e.token),
        )
        for e in enrolled
    ]


@router.get("/{study_id}/readers/{reader_id}/assignments", response_model=list[AssignmentRead])
def reader_assignments(
    study_id: IdPath, reader_id: IdPath, session: SessionDep, user: CoordinatorUser
) -> list[AssignmentRead]:
    study = service.visible_study(session, user, study_id)
    return [
        AssignmentRead.model_validate(row._asdict())
        for row in service.reader_assignments(session, study, reader_id)
    ]


@router.get("/{study_id}/progress", response_model=list[ReaderProgress])
def progress(study_id: IdPath, session: SessionDep, user: CoordinatorUser) -> list[ReaderProgress]:
    return service.progress(session, service.visible_study(session, user, study_id))


@router.post("/{study_id}/readers/{reader_id}/revoke", response_model=ReaderRead)
def revoke_reader(
    study_id: IdPath, reader_id: IdPath, session: SessionDep, user: CoordinatorUser
) -> ReaderRead:
    study = service.visible_study(session, user, study_id)
    return ReaderRead.model_validate(service.revoke_reader(session, study, reader_id))


@router.post("/{study_id}/readers/{reader_id}/reissue", response_model=ReaderInvitation)
def reissue_link(
    study_id: IdPath,
    reader_id: IdPath,
    request: Request,
    session: SessionDep,
    user: CoordinatorUser,
) -> ReaderInvitation:
    study = service.visible_study(session, user, study_id)
    e = service.reissue_link(session, study, reader_id)
    return ReaderInvitation(
        reader=ReaderRead.model_validate(e.reader),
        token=e.token,
        invitation_url=service.invitation_url(request.app.state.settings, e.token),
    )
