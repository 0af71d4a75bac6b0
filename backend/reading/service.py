"""What a reader sees and answers. Cases are addressed by position only (blinding)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.auth.tokens import hash_token, new_token
from backend.errors import AppError, ConflictError, NotFoundError
from backend.reading import repository
from backend.reading.models import Answer, AnswerRevision, ReaderSession
from backend.reading.schemas import (
    ANSWER_FIELDS,
    AnswerIn,
    AnswerSaved,
    AnswerState,
    CaseList,
    CaseSummary,
    ProfileIn,
    ProfileQuestion,
    Progress,
    Question,
    ReaderMe,
    ReaderPreset,
)
from backend.studies import profile
from backend.studies.models import Assignment, Reader, Study, StudyStatus
from backend.studies.presets import presets_of
from backend.timeutil import utcnow

QUESTIONS = [
    Question(
        key="agree",
        text="Do you fully agree with the given label?",
        kind="yes_no",
        anchors={"yes": "Yes", "no": "No"},
    ),
    Question(
        key="quality",
        text="How would you rate the image quality?",
        kind="scale",
        anchors={"1": "very poor", "5": "excellent"},
    ),
    Question(
        key="difficulty",
        text="How difficult is it to properly diagnose this image?",
        kind="scale",
        anchors={"1": "very easy", "5": "very hard"},
    ),
]


class InvitationError(AppError):
    status_code = 404


@event.listens_for(Session, "before_flush")
def _answer_history_is_append_only(session: Session, _ctx: object, _instances: object) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AnswerRevision) and (obj in session.deleted or session.is_modified(obj)):
            raise ConflictError("answer history is append-only")


_NOT_OPEN = {
    StudyStatus.closed: "the study is closed; your earlier answers are saved",
    StudyStatus.draft: "the study has not opened yet",
}
NOT_VALID = "this invitation link is not valid; ask the study coordinator for a new one"
WITHDRAWN = (
    "this invitation link was withdrawn by the study coordinator; ask them if you should go on"
    " reading (answers you gave before are kept)"
)


def start_session(session: Session, invitation_token: str) -> tuple[Reader, str]:
    """Exchange an invitation token for a reader session token."""
    reader = repository.reader_by_invitation(session, hash_token(invitation_token))
    if reader is None:
        raise InvitationError(NOT_VALID)
    if reader.revoked_at is not None:
        raise InvitationError(WITHDRAWN, detail={"reason": "withdrawn"})
    token = new_token()
    repository.add(session, ReaderSession(token_hash=hash_token(token), reader_id=reader.id))
    return reader, token


def session_reader(session: Session, token: str) -> Reader | None:
    """The reader of a session token, withdrawn or not (None for an unknown or ended session)."""
    return repository.reader_by_session(session, hash_token(token))


def reader_for_session(session: Session, token: str) -> Reader | None:
    reader = session_reader(session, token)
    return reader if reader is not None and reader.revoked_at is None else None


def end_session(session: Session, token: str) -> None:
    repository.end_session(session, hash_token(token))


def _state(answer: Answer | None) -> AnswerState | None:
    if answer is None:
        return None
    return AnswerState(
        agree=answer.agree,
        quality=answer.quality,
        difficulty=answer.difficulty,
        flagged=answer.flagged,
        comment=answer.comment,
        active_seconds=answer.active_seconds,
        complete=answer.completed_at is not None,
        updated_at=answer.updated_at,
    )


@dataclass(frozen=True)
class _Overview:
    total: int
    answered: int
    next_position: int | None


def _overview(
    session: Session, reader: Reader, states: list[repository.CaseState] | None = None
) -> _Overview:
    if states is None:
        states = repository.case_states(session, reader.id)
    incomplete = [c.position for c in states if not c.complete]
    return _Overview(
        len(states), len(states) - len(incomplete), incomplete[0] if incomplete else None
    )


def me(session: Session, reader: Reader) -> ReaderMe:
    study = reader.study
    states = repository.case_states(session, reader.id)
    o = _overview(session, reader, states)
    fields = profile.parse_fields(study.profile_fields)
    return ReaderMe(
        reader_key=reader.client_key,
        display_name=reader.display_name,
        study_name=study.name,
        study_status=study.status.value,
        accepting_answers=study.status == StudyStatus.open,
        answers_can_change=study.allow_answer_changes,
        progress=Progress(answered=o.answered, total=o.total),
        next_position=o.next_position,
        questions=QUESTIONS,
        practice_cases=sum(c.practice for c in states),
        profile_questions=[ProfileQuestion(**f.model_dump()) for f in fields],
        profile_needed=bool(fields) and reader.profile_at is None,
        window_presets=[ReaderPreset(**p.model_dump()) for p in presets_of(study.window_presets)],
    )


def give_profile(session: Session, reader: Reader, data: ProfileIn) -> ReaderMe:
    """The reader's profile, given once; answers are checked against the study's questions."""
    study = reader.study
    fields = profile.parse_fields(study.profile_fields)
    if not fields:
        raise ConflictError("this study asks for no profile")
    if reader.profile_at is not None:
        raise ConflictError(
            "your profile was already given; ask the study coordinator to correct it"
        )
    if study.status != StudyStatus.open:
        raise ConflictError(_NOT_OPEN[study.status])
    reader.profile = profile.checked_answers(fields, data.answers)
    reader.profile_at = utcnow()
    session.flush()
    return me(session, reader)


def list_cases(session: Session, reader: Reader) -> CaseList:
    states = repository.case_states(session, reader.id)
    cases = [
        CaseSummary(
            position=c.position,
            complete=c.complete,
            started=c.started,
            flagged=c.flagged,
            practice=c.practice,
        )
        for c in states
    ]
    return CaseList(
        progress=Progress(answered=sum(c.complete for c in cases), total=len(cases)), cases=cases
    )


def case_assignment(
    session: Session, reader: Reader, position: int, *, for_update: bool = False
) -> Assignment:
    assignment = repository.assignment_at(session, reader.id, position, for_update=for_update)
    if assignment is None:
        raise NotFoundError(f"there is no case {position}")
    return assignment


NOTE_FIELDS = ("flagged", "comment")


def _same_payload(rev: AnswerRevision, data: AnswerIn, assignment_id: int) -> bool:
    return (
        rev.assignment_id == assignment_id
        and all(getattr(rev, k) == getattr(data, k) for k in (*ANSWER_FIELDS, *NOTE_FIELDS))
        and abs(rev.active_seconds - data.active_seconds) < 1e-6
    )


def _given_at(sent_at: datetime | None, received_at: datetime) -> datetime:
    """When an answer was given: the reader's clock, but never later than its arrival (a clock
    running ahead cannot make an answer newer than it is)."""
    return received_at if sent_at is None else min(sent_at, received_at)


def _superseded(session: Session, assignment_id: int, data: AnswerIn, now: datetime) -> set[str]:
    """The fields of this save for which a newer value was already given (another tab or
    device, or an answer that waited offline): those are kept, this one is not applied."""
    given_at = _given_at(data.client_sent_at, now)
    latest: dict[str, datetime] = {}
    for rev in repository.revisions_of(session, assignment_id):
        at = _given_at(rev.client_sent_at, rev.received_at)
        for k in (*ANSWER_FIELDS, *NOTE_FIELDS):
            if getattr(rev, k) is not None and (k not in latest or at > latest[k]):
                latest[k] = at
    return {
        k
        for k in (*ANSWER_FIELDS, *NOTE_FIELDS)
        if getattr(data, k) is not None and k in latest and latest[k] > given_at
    }


def _apply(
    session: Session, study: Study, assignment_id: int, data: AnswerIn
) -> tuple[Answer, set[str]]:
    answer = repository.answer_for(session, assignment_id)
    now = utcnow()
    stale = _superseded(session, assignment_id, data, now)
    given = {
        k: getattr(data, k)
        for k in ANSWER_FIELDS
        if getattr(data, k) is not None and k not in stale
    }
    if answer is not None and not study.allow_answer_changes:
        changed = [
            k
            for k, v in given.items()
            if getattr(answer, k) is not None and getattr(answer, k) != v
        ]
        if changed:
            raise ConflictError(
                f"answers cannot be changed in this study; already answered: {', '.join(changed)}"
            )
    repository.add(
        session,
        AnswerRevision(
            client_answer_id=data.answer_id,
            assignment_id=assignment_id,
            agree=data.agree,
            quality=data.quality,
            difficulty=data.difficulty,
            flagged=data.flagged,
            comment=data.comment,
            active_seconds=data.active_seconds,
            client_sent_at=data.client_sent_at,
            received_at=now,
        ),
    )
    if answer is None:
        answer = Answer(
            assignment_id=assignment_id, first_answered_at=now, active_seconds=0.0, flagged=False
        )
        session.add(answer)
    for key, value in given.items():
        if getattr(answer, key) != value:
            setattr(answer, f"{key}_at", now)
        setattr(answer, key, value)
    if data.flagged is not None and "flagged" not in stale:
        answer.flagged = data.flagged
    if data.comment is not None and "comment" not in stale:
        answer.comment = data.comment.strip() or None
    # The client reports the active time it measured on this case so far; keep the largest.
    answer.active_seconds = max(answer.active_seconds or 0.0, data.active_seconds)
    answer.revision_count = (answer.revision_count or 0) + 1
    answer.updated_at = now
    complete = (
        answer.agree is not None and answer.quality is not None and answer.difficulty is not None
    )
    if complete and answer.completed_at is None:
        answer.completed_at = now
    session.flush()
    return answer, stale


def save_answer(session: Session, reader: Reader, position: int, data: AnswerIn) -> AnswerSaved:
    """Save one answer. Idempotent on answer_id: a retry returns the stored result unchanged.

    The case's assignment is locked first (FOR UPDATE on PostgreSQL; on SQLite the request's
    transaction already holds the write lock), so saves of one case run one after another, and
    each looks for its answer_id and the case's answer only once it holds the lock: a retry that
    arrives while the first attempt is still in flight waits for it and then replays it.
    """
    study = reader.study
    assignment = case_assignment(session, reader, position, for_update=True)
    previous = repository.revision_by_client_id(session, data.answer_id)
    if previous is not None:
        if not _same_payload(previous, data, assignment.id):
            raise ConflictError("answer_id was already used for a different answer; send a new id")
        replayed = True
        stale: set[str] = set()
        answer = repository.answer_for(session, assignment.id)
    else:
        if study.status != StudyStatus.open:
            raise ConflictError(_NOT_OPEN[study.status])
        try:
            answer, stale = _apply(session, study, assignment.id, data)
        except IntegrityError as e:
            # Saves of one case are serialized by the lock; only the same answer_id sent at the
            # same moment for another case gets here. The request's transaction is rolled back.
            raise ConflictError(
                "answer_id was used at the same moment for another answer; send a new id"
            ) from e
        replayed = False
    state = _state(answer)
    assert state is not None
    o = _overview(session, reader)
    return AnswerSaved(
        position=position,
        answer=state,
        progress=Progress(answered=o.answered, total=o.total),
        next_position=o.next_position,
        replayed=replayed,
        superseded=sorted(stale),
    )
