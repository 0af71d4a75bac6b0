from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class GroupSummaryRead(BaseModel):
    n: int
    mean: float | None
    sd: float | None
    median: float | None
    percent_yes: float | None


class ReaderAwareTest(BaseModel):
    method: str
    statistic: float
    p: float
    p_holm: float | None  # Holm-adjusted across the questions tested
    permutations: int
    readers: int


class EffectSize(BaseModel):
    method: str
    estimate: float  # Cliff's delta; for agreement the difference in the proportion of yes
    ci: tuple[float, float] | None
    level: float
    percent_yes_difference: float | None  # agreement only: 100 x estimate, in points


class ModelResult(BaseModel):
    method: str
    estimate: float
    ci: tuple[float, float]
    p: float
    caution: str


class QuestionStats(BaseModel):
    question: str
    text: str
    pie: GroupSummaryRead
    non_pie: GroupSummaryRead
    # the paper's test: every answer pooled as if independent
    h: float | None
    df: int | None
    p: float | None
    epsilon_squared: float | None
    pooled_note: str
    # readers as clusters
    reader_aware: ReaderAwareTest | None
    effect: EffectSize | None
    model: ModelResult | None
    note: str | None


class ReaderStats(BaseModel):
    reader_id: int
    reader: str
    revoked: bool
    answers: int
    questions: list[QuestionStats]
    note: str | None  # where the reader has too few answers for a test


class Inclusion(BaseModel):
    """What the tables count: printed with every table."""

    rule: Literal["complete", "all"]
    excluded_readers: list[int]
    readers: int
    cases: int  # reader x case pairs counted
    text: str


class EstimateRead(BaseModel):
    method: str
    value: float
    ci: tuple[float, float] | None
    cases: int


class PairKappaRead(BaseModel):
    reader_a: int
    reader_b: int
    estimate: EstimateRead


class AgreementStats(BaseModel):
    """Agreement between readers on the overlap cases (read by every reader)."""

    overlap_cases: int
    readers: int
    fleiss_kappa_agree: EstimateRead | None
    weighted_kappa: dict[str, list[PairKappaRead]]  # quality, difficulty: every pair
    krippendorff_alpha: dict[str, EstimateRead | None]  # quality, difficulty
    icc: dict[str, EstimateRead | None]  # quality, difficulty
    note: str | None


class StudyStats(BaseModel):
    study_id: int
    readers: int
    answered_cases: int
    inclusion: Inclusion
    permutations: int
    bootstrap_resamples: int
    questions: list[QuestionStats]
    agreement: AgreementStats
    per_reader: list[ReaderStats]


class PowerRequest(BaseModel):
    """A planned design and the effect it should find."""

    readers: int = Field(default=6, ge=1, le=1000)
    cases_per_reader: int = Field(default=40, ge=1, le=2000, description="each reader's own cases")
    pie_fraction: float = Field(default=0.5, gt=0.0, lt=1.0)
    overlap_cases: int = Field(default=0, ge=0, le=2000, description="cases every reader reads")
    shift: float = Field(
        default=0.4, ge=-4.0, le=4.0,
        description="PIE minus non-PIE on the latent scale, about grade points on a 1-5 scale",
    )  # fmt: skip
    spread: float = Field(default=0.8, ge=0.0, le=4.0, description="SD of the readers' own levels")
    case_spread: float = Field(
        default=0.0, ge=0.0, le=4.0,
        description="SD of a case's own effect, shared by the readers who read it (overlap cases)",
    )  # fmt: skip
    simulations: int | None = Field(
        default=None, ge=10, le=5000,
        description="left out: as many as one request may run, up to 200 (the answer says how many)",
    )  # fmt: skip
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)


class RateRead(BaseModel):
    value: float
    ci: tuple[float, float]


class PowerRead(BaseModel):
    method: str
    simulations: int
    alpha: float
    seed: int
    scale: RateRead  # a 1-5 question at alpha
    scale_holm_first: RateRead  # a 1-5 question at alpha / 3 (Holm's first step)
    agreement: RateRead  # the yes/no question at alpha
    answers: int  # answers per simulated study
