from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from backend.studies.models import StudyStatus
from backend.studies.presets import WindowPreset, check_presets
from backend.studies.profile import ProfileField, check_fields

PRACTICE_CASES_MAX = 50
# A study's profile questions: distinct keys, at most PROFILE_FIELDS_MAX of them.
ProfileFieldList = Annotated[list[ProfileField], AfterValidator(check_fields)]
# The viewer's window presets: distinct keys, at most PRESETS_MAX of them.
PresetList = Annotated[list[WindowPreset], AfterValidator(check_presets)]


class DesignFields(BaseModel):
    cases_per_reader: int = Field(default=40, ge=1, le=2000)
    pie_fraction: float = Field(default=0.5, ge=0.0, le=1.0)
    overlap_cases: int = Field(default=0, ge=0, le=2000)
    planned_readers: int = Field(default=6, ge=1, le=1000)
    practice_cases: int = Field(
        default=0,
        ge=0,
        le=PRACTICE_CASES_MAX,
        description="cases every reader reads first; never exported or counted",
    )
    seed: int | None = Field(default=None, ge=0, le=2**62, description="random if not given")


class StudyCreate(DesignFields):
    name: str = Field(min_length=1, max_length=200)
    pie_set_id: int
    allow_answer_changes: bool = True
    profile_fields: ProfileFieldList = Field(
        default_factory=list, description="questions each reader answers once about themselves"
    )
    window_presets: PresetList | None = Field(
        default=None, description="the viewer's window presets; none given: lung, mediastinum, bone"
    )


class StudyUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    allow_answer_changes: bool | None = None
    profile_fields: ProfileFieldList | None = Field(
        default=None, description="only while no reader has given a profile"
    )
    window_presets: PresetList | None = Field(
        default=None, description="the viewer's window presets (they apply from the next case)"
    )


class StatusChange(BaseModel):
    status: StudyStatus


class AllocationPreviewRequest(DesignFields):
    pie_set_id: int


class AllocationPreview(BaseModel):
    pies_per_reader: int
    non_pies_per_reader: int
    overlap_pies: int
    overlap_non_pies: int
    practice_cases: int
    cases_seen_per_reader: int
    pool_pies: int
    pool_non_pies: int
    max_readers: int | None
    planned_readers: int
    feasible: bool
    problem: str | None


class StudyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    pie_set_id: int
    owner_id: int
    cases_per_reader: int
    pie_fraction: float
    overlap_cases: int
    planned_readers: int
    practice_cases: int
    seed: int
    status: StudyStatus
    allow_answer_changes: bool
    profile_fields: list[ProfileField]
    window_presets: list[WindowPreset] | None
    created_at: datetime
    opened_at: datetime | None
    closed_at: datetime | None


class MemberAdd(BaseModel):
    username: str = Field(min_length=1, max_length=80)


class EnrollRequest(BaseModel):
    display_names: list[str] = Field(min_length=1, max_length=200)
    allow_duplicate_names: bool = Field(
        default=False, description="enroll a name that is already in the study"
    )


class ReaderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    study_id: int
    slot: int
    display_name: str
    created_at: datetime
    revoked_at: datetime | None
    profile: dict[str, int | str] | None
    profile_at: datetime | None


class ReaderInvitation(BaseModel):
    """Returned once, at enrollment: the token is not stored and cannot be shown again."""

    reader: ReaderRead
    token: str
    invitation_url: str


class AssignmentRead(BaseModel):
    """The coordinator's view of a reader's list (includes PIE membership: never for readers)."""

    position: int
    image_id: int
    external_id: str
    is_pie: bool
    is_overlap: bool
    is_practice: bool


class ReaderProgress(BaseModel):
    reader_id: int
    display_name: str
    done: int
    total: int
    last_activity: datetime | None
    median_seconds_per_case: float | None
    revoked: bool
