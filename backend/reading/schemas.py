"""Everything a reader can receive. Blinding is a property of these types: ReaderSchema refuses,
when a class is defined, any field whose name could carry PIE membership or identify an image
(scores, ranks, groups, database or dataset ids, file names); extra fields are forbidden, so
nothing else can slip through serialization either."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

FORBIDDEN_FIELD = re.compile(
    r"pie|score|rank|group|is_|image_id|external|case_id|assignment|file|path|dataset|slot|seed|token",
    re.IGNORECASE,
)


# A reader's cases are numbered 1..n; no study has more cases per reader than this.
MAX_POSITION = 100_000
INVITATION_TOKEN_MAX = 200
COMMENT_MAX = 2000
# The header each reader request carries: the reader the page belongs to (ReaderMe.reader_key).
READER_KEY_HEADER = "x-reader-key"
# A 1-5 scale answer: a JSON integer only (no strings, floats or booleans coerced into one).
Scale = Annotated[int, Field(strict=True, ge=1, le=5)]
ANSWER_FIELDS = ("agree", "quality", "difficulty")


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


class ProfileQuestion(ReaderSchema):
    """One question of the reader profile (backend.studies.profile.ProfileField)."""

    key: str
    label: str
    kind: str  # "integer", "choice" or "text"
    required: bool
    minimum: int | None
    maximum: int | None
    choices: list[str]


class ReaderPreset(ReaderSchema):
    """A window preset of the viewer (backend.studies.presets.WindowPreset)."""

    key: str
    label: str
    center: float | None = None
    width: float | None = None
    from_percentile: float | None = None
    to_percentile: float | None = None


class ReaderMe(ReaderSchema):
    allowed_fields: ClassVar[frozenset[str]] = frozenset({"profile_questions", "profile_needed"})
    reader_key: str  # opaque; keys this reader's answers and cache in the browser
    display_name: str
    study_name: str
    study_status: str
    accepting_answers: bool
    answers_can_change: bool
    progress: Progress
    next_position: int | None  # None when every case is done
    questions: list[Question]
    practice_cases: int  # the first this many cases are practice: not counted in the study
    profile_questions: list[ProfileQuestion]
    profile_needed: bool  # the study asks for a profile and this reader has not given it
    window_presets: list[ReaderPreset]  # after the file's own window, which always comes first


class ProfileIn(ReaderSchema):
    """The reader's answers to the profile questions, by key. Checked strictly against the
    study's questions (backend.studies.profile.checked_answers)."""

    answers: dict[str, Any] = Field(max_length=100)


class Question(ReaderSchema):
    key: str
    text: str
    kind: str  # "yes_no" or "scale"
    anchors: dict[str, str]


class AnswerState(ReaderSchema):
    agree: bool | None
    quality: int | None
    difficulty: int | None
    flagged: bool
    comment: str | None
    active_seconds: float
    complete: bool
    updated_at: datetime | None


class CaseSummary(ReaderSchema):
    position: int
    complete: bool
    started: bool
    flagged: bool
    practice: bool


class CaseList(ReaderSchema):
    progress: Progress
    cases: list[CaseSummary]


class ReaderRendering(ReaderSchema):
    """The case's full-range rendering (a 16-bit PNG at image_url) and how to window it: a
    grey level g stands for the value slope * g + intercept of the image's own units (slope < 0
    where the source is MONOCHROME1); the default window is in those units. pixel_spacing_mm is
    (row, column), None where the image gives none (or 0): distances are then in pixels."""

    image_url: str
    columns: int
    rows: int
    slope: float
    intercept: float
    window_center: float
    window_width: float
    pixel_spacing_mm: list[float] | None = Field(min_length=2, max_length=2)
    bits_stored: int


class ReaderCase(ReaderSchema):
    position: int
    total: int
    practice: bool  # a practice case: answered like any other, never counted in the study
    labels: list[str]
    image_url: str
    # the full rendering and how to window it (also at .../rendering): None where the image
    # cannot be rendered, which its image request then says
    rendering: ReaderRendering | None = None
    answer: AnswerState | None
    previous_position: int | None
    next_position: int | None


class CasesAhead(ReaderSchema):
    cases: list[ReaderCase]


class AnswerIn(ReaderSchema):
    """One save. Fields left out (or null) are not given in this save: partial answers are fine,
    but a save must give at least one answer, the flag or the comment. Types are strict: agree
    is a JSON boolean, the scales JSON integers 1-5; nothing is coerced."""

    answer_id: str = Field(
        min_length=8, max_length=64, description="chosen by the client; a retry sends the same id"
    )
    agree: StrictBool | None = None
    quality: Scale | None = None
    difficulty: Scale | None = None
    flagged: StrictBool | None = Field(default=None, description="flag the case for review")
    comment: str | None = Field(
        default=None, max_length=COMMENT_MAX, description="free text; an empty string clears it"
    )
    active_seconds: float = Field(default=0.0, ge=0.0, le=7 * 24 * 3600, allow_inf_nan=False)
    client_sent_at: datetime | None = Field(
        default=None, description="when the reader gave this answer (the client's clock)"
    )

    @field_validator("answer_id")
    @classmethod
    def _answer_id_charset(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            raise ValueError("use letters, digits, '-' and '_' (a UUID is ideal)")
        return value

    @model_validator(mode="after")
    def _gives_something(self) -> AnswerIn:
        if all(getattr(self, k) is None for k in (*ANSWER_FIELDS, "flagged", "comment")):
            raise ValueError(
                "this save answers nothing: give agree, quality, difficulty, flagged or comment"
            )
        return self


class AnswerSaved(ReaderSchema):
    position: int
    answer: AnswerState
    progress: Progress
    next_position: int | None
    replayed: bool  # True when this answer_id had already been saved (a retry)
    # Fields of this save not applied because a newer value was given meanwhile (another tab or
    # device): `answer` holds the newer one.
    superseded: list[str] = []


class SessionRequest(ReaderSchema):
    # the invitation token is the credential being exchanged here; nothing else is named token
    allowed_fields: ClassVar[frozenset[str]] = frozenset({"invitation_token"})
    invitation_token: str = Field(min_length=10, max_length=INVITATION_TOKEN_MAX)


ReaderMe.model_rebuild()
