from __future__ import annotations

from pydantic import BaseModel


class GroupSummaryRead(BaseModel):
    n: int
    mean: float | None
    sd: float | None
    median: float | None
    percent_yes: float | None


class QuestionStats(BaseModel):
    question: str
    text: str
    pie: GroupSummaryRead
    non_pie: GroupSummaryRead
    h: float | None
    df: int | None
    p: float | None
    epsilon_squared: float | None
    epsilon_squared_ci: tuple[float, float] | None
    note: str | None


class ReaderStats(BaseModel):
    reader_id: int
    reader: str
    questions: list[QuestionStats]


class StudyStats(BaseModel):
    study_id: int
    readers: int
    answered_cases: int
    bootstrap_resamples: int
    questions: list[QuestionStats]
    per_reader: list[ReaderStats]
