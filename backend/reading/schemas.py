"""Everything a reader can receive. Blinding is a property of these types: ReaderSchema refuses,
when a class is defined, any field whose name could carry PIE membership or identify an image
(scores, ranks, groups, database or dataset ids, file names); extra fields are forbidden, so
nothing else can slip through serialization either."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

FORBIDDEN_FIELD = re.compile(
    r"pie|score|rank|group|is_|image_id|external|case_id|assignment|file|path|dataset|slot|seed|token",
    re.IGNORECASE,
)


# A reader's cases are numbered 1..n; no study has more cases per reader than this.
MAX_POSITION = 100_000
INVITATION_TOKEN_MAX = 200


class ReaderSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)
    allowed_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for name in cls.model_fields:
            if FORBIDDEN_FIELD.search(name) and name not in cls.allowed_fields:
                raise TypeError(
                    f"{cls.__name__}.{name}: a reader-facing schema cannot carry this field"
                )


class Progress(ReaderSchema):
    answered: int
    total: int


class ReaderMe(ReaderSchema):
    display_name: str
    study_name: str
    study_status: str
    accepting_answers: bool
    answers_can_change: bool
    progress: Progress
    next_position: int | None  # None when every case is done
    questions: list[Question]


class Question(ReaderSchema):
    key: str
    text: str
    kind: str  # "yes_no" or "scale"
    anchors: dict[str, str]


class AnswerState(ReaderSchema):
    agree: bool | None
    quality: int | None
    difficulty: int | None
    active_seconds: float
    complete: bool
    updated_at: datetime | None


class CaseSummary(ReaderSchema):
    position: int
    complete: bool
    started: bool


class CaseList(ReaderSchema):
    progress: Progress
    cases: list[CaseSummary]


class ReaderCase(ReaderSchema):
    position: int
    total: int
    labels: list[str]
    image_url: str
    answer: AnswerState | None
    previous_position: int | None
    next_position: int | None


class AnswerIn(ReaderSchema):
    """One save. Fields left out (or null) are not given in this save: partial answers are fine."""

    answer_id: str = Field(
        min_length=8, max_length=64, description="chosen by the client; a retry sends the same id"
    )
    agree: bool | None = None
    quality: int | None = Field(default=None, ge=1, le=5)
    difficulty: int | None = Field(default=None, ge=1, le=5)
    active_seconds: float = Field(default=0.0, ge=0.0, le=7 * 24 * 3600, allow_inf_nan=False)
    client_sent_at: datetime | None = None

    @field_validator("answer_id")
    @classmethod
    def _answer_id_charset(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            raise ValueError("use letters, digits, '-' and '_' (a UUID is ideal)")
        return value


class AnswerSaved(ReaderSchema):
    position: int
    answer: AnswerState
    progress: Progress
    next_position: int | None
    replayed: bool  # True when this answer_id had already been saved (a retry)


class SessionRequest(ReaderSchema):
    # the invitation token is the credential being exchanged here; nothing else is named token
    allowed_fields: ClassVar[frozenset[str]] = frozenset({"invitation_token"})
    invitation_token: str = Field(min_length=10, max_length=INVITATION_TOKEN_MAX)


ReaderMe.model_rebuild()
