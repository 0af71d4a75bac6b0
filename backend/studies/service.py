"""Studies: design, coordinators, reader enrollment with balanced unique allocation."""

from __future__ import annotations

import secrets
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.auth import repository as auth_repo
from backend.auth.models import Role, User
from backend.auth.tokens import hash_token, new_token
from backend.config import Settings
from backend.errors import ConflictError, InvalidInputError, NotFoundError
from backend.piesets import repository as piesets_repo
from backend.piesets.repository import PoolImage
from backend.piesets.service import get_pie_set
from backend.studies import allocation, repository
from backend.studies.allocation import AllocationError, Design
from backend.studies.models import Reader, Study, StudyMember, StudyStatus
from backend.studies.presets import WindowPreset
from backend.studies.repository import AssignedCase
from backend.studies.schemas import (
    AllocationPreview,
    DesignFields,
    ReaderProgress,
    StudyCreate,
    StudyUpdate,
)
from backend.timeutil import utcnow

_TRANSITIONS = {
    StudyStatus.draft: {StudyStatus.open},
    StudyStatus.open: {StudyStatus.closed},
    StudyStatus.closed: {StudyStatus.open},
}
# Concurrent enrollments that collide on a slot or an image retry this often before giving up.
ENROLL_ATTEMPTS = 8


@dataclass(frozen=True)
class Enrolled:
    reader: Reader
    token: str


def invitation_url(settings: Settings, token: str) -> str:
    """A reader's invitation link (shown once, when the reader is enrolled or given a new link)."""
    return f"{settings.base_url}/r/{token}"


def design_of(study: Study) -> Design:
    return Design(
        study.cases_per_reader,
        study.pie_fraction,
        study.overlap_cases,
        study.seed,
        practice_cases=study.practice_cases,
    )


def _design_from(fields: DesignFields, seed: int) -> Design:
    try:
        return Design(
            fields.cases_per_reader,
            fields.pie_fraction,
            fields.overlap_cases,
            seed,
            practice_cases=fields.practice_cases,
        )
    except AllocationError as exc:
        raise InvalidInputError(str(exc)) from exc


def _pool(session: Session, pie_set_id: int) -> tuple[list[PoolImage], list[PoolImage]]:
    return piesets_repo.members_by_group(session, pie_set_id)


def preview(session: Session, pie_set_id: int, fields: DesignFields) -> AllocationPreview:
    get_pie_set(session, pie_set_id)
    design = _design_from(fields, fields.seed or 0)
    pies, non_pies = _pool(session, pie_set_id)
    problem = None
    try:
        allocation.check_capacity(design, len(pies), len(non_pies), 0, fields.planned_readers)
    except AllocationError as exc:
        problem = str(exc)
    return AllocationPreview(
        pies_per_reader=design.pies_per_reader,
        non_pies_per_reader=design.non_pies_per_reader,
        overlap_pies=design.overlap_pies,
        overlap_non_pies=design.overlap_non_pies,
        practice_cases=design.practice_cases,
        cases_seen_per_reader=design.cases_seen_per_reader,
        pool_pies=len(pies),
        pool_non_pies=len(non_pies),
        max_readers=allocation.max_readers(design, len(pies), len(non_pies)),
        planned_readers=fields.planned_readers,
        feasible=problem is None,
        problem=problem,
    )


def _stored_presets(presets: list[WindowPreset] | None) -> list[dict[str, Any]] | None:
    return None if presets is None else [p.model_dump(exclude_none=True) for p in presets]


def create_study(session: Session, owner: User, data: StudyCreate) -> Study:
    pie_set = get_pie_set(session, data.pie_set_id)
    seed = data.seed if data.seed is not None else secrets.randbelow(2**31)
    design = _design_from(data, seed)
    pies, non_pies = _pool(session, pie_set.id)
    try:
        allocation.check_capacity(design, len(pies), len(non_pies), 0, data.planned_readers)
    except AllocationError as exc:
        raise InvalidInputError(
            f"PIE set {pie_set.name!r} v{pie_set.version} is too small: {exc}"
        ) from exc
    study = Study(
        name=data.name,
        pie_set_id=pie_set.id,
        owner_id=owner.id,
        cases_per_reader=data.cases_per_reader,
        pie_fraction=data.pie_fraction,
        overlap_cases=data.overlap_cases,
        planned_readers=data.planned_readers,
        practice_cases=data.practice_cases,
        seed=seed,
        allow_answer_changes=data.allow_answer_changes,
        profile_fields=[f.model_dump() for f in data.profile_fields],
        window_presets=_stored_presets(data.window_presets),
    )
    repository.add(session, study)
    pie_order = allocation.shuffled(pies, seed, "pies")
    non_pie_order = allocation.shuffled(non_pies, seed, "non-pies")

    def image_ids(slices: allocation.Slices) -> list[int]:
        return [
            image_id
            for _, image_id in (
                *allocation.take(pie_order, slices.pies),
                *allocation.take(non_pie_order, slices.non_pies),
            )
        ]

    overlap = image_ids(allocation.overlap_slices(design))
    repository.insert_cases(session, study.id, overlap, reader_id=None)
    practice = image_ids(allocation.practice_slices(design, len(pies), len(non_pies)))
    repository.insert_cases(session, study.id, practice, reader_id=None, practice=True)
    return study


def can_see(session: Session, user: User, study: Study) -> bool:
    if user.role == Role.admin:
        return True
    if user.role != Role.coordinator:
        return False
    return study.owner_id == user.id or repository.is_member(session, study.id, user.id)


def visible_study(
    session: Session, user: User, study_id: int, *, for_update: bool = False
) -> Study:
    """The study, if this user may see it; otherwise 'not found', so others' studies stay invisible."""
    study = repository.get(session, study_id, for_update=for_update)
    if study is None or not can_see(session, user, study):
        raise NotFoundError(f"study {study_id} not found")
    return study


def list_studies(session: Session, user: User) -> Sequence[Study]:
    return repository.list_visible(session, None if user.role == Role.admin else user.id)


def update_study(session: Session, study: Study, data: StudyUpdate) -> Study:
    if data.name is not None:
        study.name = data.name
    if data.allow_answer_changes is not None:
        study.allow_answer_changes = data.allow_answer_changes
    if data.profile_fields is not None:
        if repository.profiles_given(session, study.id):
            raise ConflictError(
                "profile_fields: readers have given their profile; the questions cannot change"
            )
        study.profile_fields = [f.model_dump() for f in data.profile_fields]
    if data.window_presets is not None:
        study.window_presets = _stored_presets(data.window_presets)
    session.flush()
    return study


def change_status(session: Session, study: Study, new: StudyStatus) -> Study:
    if new == study.status:
        return study
    if new not in _TRANSITIONS[study.status]:
        allowed = ", ".join(sorted(s.value for s in _TRANSITIONS[study.status]))
        raise ConflictError(f"a {study.status.value} study can become: {allowed}; not {new.value}")
    study.status = new
    if new == StudyStatus.open:
        study.opened_at = study.opened_at or utcnow()
        study.closed_at = None
    else:
        study.closed_at = utcnow()
    session.flush()
    return study


def add_member(session: Session, study: Study, username: str) -> User:
    user = auth_repo.get_user_by_username(session, username)
    if user is None:
        raise NotFoundError(f"no user named {username!r}")
    if user.role not in (Role.coordinator, Role.admin):
        raise InvalidInputError(f"username: {username!r} is a {user.role.value}, not a coordinator")
    if user.id != study.owner_id and not repository.is_member(session, study.id, user.id):
        repository.add(session, StudyMember(study_id=study.id, user_id=user.id))
    return user


def remove_member(session: Session, study: Study, user_id: int) -> None:
    repository.remove_member(session, study.id, user_id)


def member_ids(session: Session, study: Study) -> Sequence[int]:
    return repository.members(session, study.id)


def _enroll_once(session: Session, study: Study, names: Sequence[str]) -> list[Enrolled]:
    design = design_of(study)
    pies, non_pies = _pool(session, study.pie_set_id)
    first_slot = repository.next_slot(session, study.id)
    try:
        allocation.check_capacity(design, len(pies), len(non_pies), first_slot, len(names))
    except AllocationError as exc:
        raise ConflictError(f"cannot enroll: {exc}") from exc
    pie_order = allocation.shuffled(pies, study.seed, "pies")
    non_pie_order = allocation.shuffled(non_pies, study.seed, "non-pies")
    overlap = sorted(
        repository.shared_cases(session, study.id, practice=False), key=lambda c: c.image_id
    )
    # The same practice cases, in the same order, come first for every reader.
    practice = allocation.shuffled(
        sorted(repository.shared_cases(session, study.id, practice=True), key=lambda c: c.image_id),
        study.seed,
        "practice",
    )
    enrolled = []
    for offset, name in enumerate(names):
        slot = first_slot + offset
        token = new_token()
        reader = Reader(
            study_id=study.id, slot=slot, display_name=name, token_hash=hash_token(token)
        )
        repository.add(session, reader)
        slices = allocation.reader_slices(design, slot)
        own = allocation.take(pie_order, slices.pies) + allocation.take(
            non_pie_order, slices.non_pies
        )
        # Canonical order (by external id) before the seeded shuffle, so the order is reproducible.
        own.sort()
        shuffled_own = allocation.shuffled(own, study.seed, f"insert/{slot}")
        own_case_ids = repository.insert_cases(
            session, study.id, [image_id for _, image_id in shuffled_own], reader_id=reader.id
        )
        by_image = {
            image_id: case_id
            for (_, image_id), case_id in zip(shuffled_own, own_case_ids, strict=True)
        }
        by_image.update({image_id: case_id for case_id, image_id in overlap})
        canonical = sorted(by_image)
        ordered = allocation.reader_order(canonical, study.seed, slot)
        repository.insert_assignments(
            session, reader.id, [c.case_id for c in practice] + [by_image[i] for i in ordered]
        )
        enrolled.append(Enrolled(reader, token))
    return enrolled


def enroll_readers(
    session: Session,
    study_id: int,
    user: User,
    names: Sequence[str],
    *,
    allow_duplicate_names: bool = False,
) -> list[Enrolled]:
    """Enroll readers, each with a balanced set of cases that no other reader holds.

    The study row is locked (PostgreSQL) and SQLite serializes writers; beyond that, the unique
    constraints on (study, slot) and (study, image) make a collision fail in the database, in
    which case the enrollment is retried from a savepoint with a fresh slot.
    """
    clean = [n.strip() for n in names]
    if any(not n or len(n) > 200 for n in clean):
        raise InvalidInputError("display_names: each name needs 1 to 200 characters")
    if len(set(clean)) != len(clean):
        raise InvalidInputError("display_names: a name is listed twice")
    for attempt in range(ENROLL_ATTEMPTS):
        study = visible_study(session, user, study_id, for_update=True)
        if study.status == StudyStatus.closed:
            raise ConflictError("the study is closed; reopen it to enroll readers")
        if not allow_duplicate_names:
            enrolled = {r.display_name.casefold() for r in repository.readers(session, study.id)}
            twice = [n for n in clean if n.casefold() in enrolled]
            if twice:
                raise ConflictError(
                    f"already in this study: {', '.join(twice)}; confirm to enroll another"
                    " reader of the same name (allow_duplicate_names)",
                    detail={"duplicates": twice},
                )
        try:
            with session.begin_nested():
                return _enroll_once(session, study, clean)
        except IntegrityError:
            if attempt == ENROLL_ATTEMPTS - 1:
                raise
            session.expire_all()
    raise AssertionError("unreachable")


def list_readers(session: Session, study: Study) -> Sequence[Reader]:
    return repository.readers(session, study.id)


def reader_assignments(session: Session, study: Study, reader_id: int) -> list[AssignedCase]:
    if repository.get_reader(session, study.id, reader_id) is None:
        raise NotFoundError(f"reader {reader_id} not found in study {study.id}")
    return repository.assignments(session, study, reader_id)


def delete_study(session: Session, study: Study) -> None:
    if repository.reader_count(session, study.id):
        raise ConflictError("readers are enrolled; close the study instead of deleting it")
    session.delete(study)
    session.flush()


def progress(session: Session, study: Study) -> list[ReaderProgress]:
    rows = repository.reader_progress_rows(session, study.id)
    out = []
    for reader in repository.readers(session, study.id):
        mine = [r for r in rows if r.reader_id == reader.id]
        seconds = [r.active_seconds for r in mine if r.complete and r.active_seconds is not None]
        activity = [r.last_save for r in mine if r.last_save is not None]
        out.append(
            ReaderProgress(
                reader_id=reader.id,
                display_name=reader.display_name,
                done=sum(r.complete for r in mine),
                total=len(mine),
                last_activity=max(activity) if activity else None,
                median_seconds_per_case=statistics.median(seconds) if seconds else None,
                revoked=reader.revoked_at is not None,
            )
        )
    return out


def _reader(session: Session, study: Study, reader_id: int) -> Reader:
    reader = repository.get_reader(session, study.id, reader_id)
    if reader is None:
        raise NotFoundError(f"reader {reader_id} not found in study {study.id}")
    return reader


def revoke_reader(session: Session, study: Study, reader_id: int) -> Reader:
    """The link stops working and the reader's sessions are refused from now on (they are kept,
    so that an open reading screen can say the link was withdrawn); the answers stay."""
    reader = _reader(session, study, reader_id)
    reader.revoked_at = reader.revoked_at or utcnow()
    session.flush()
    return reader


def reissue_link(session: Session, study: Study, reader_id: int) -> Enrolled:
    """A new link for the same reader, same cases and answers; the old link and sessions end."""
    from backend.reading import repository as reading_repo

    reader = _reader(session, study, reader_id)
    token = new_token()
    reader.token_hash = hash_token(token)
    reader.revoked_at = None
    reading_repo.end_sessions(session, reader.id)
    session.flush()
    return Enrolled(reader, token)
