"""A study's statistics: PIE vs non-PIE per question, overall and per reader."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from backend.reading.service import QUESTIONS
from backend.stats import compute, repository
from backend.stats.repository import ResponseRow
from backend.stats.schemas import GroupSummaryRead, QuestionStats, ReaderStats, StudyStats
from backend.studies.models import Study

BOOTSTRAP_RESAMPLES = 2000


def _question_stats(
    rows: Sequence[ResponseRow], key: str, text: str, seed: int, n_boot: int
) -> QuestionStats:
    values: dict[bool, list[float]] = {True: [], False: []}
    for r in rows:
        v = getattr(r, key)
        if v is not None:
            values[r.is_pie].append(float(v))
    result = compute.compare(
        np.array(values[True]),
        np.array(values[False]),
        binary=key == "agree",
        n_boot=n_boot,
        seed=seed,
    )
    return QuestionStats(
        question=key,
        text=text,
        pie=GroupSummaryRead(**vars(result.pie)),
        non_pie=GroupSummaryRead(**vars(result.non_pie)),
        h=result.test.h if result.test else None,
        df=result.test.df if result.test else None,
        p=result.test.p if result.test else None,
        epsilon_squared=result.epsilon_squared,
        epsilon_squared_ci=result.epsilon_squared_ci,
        note=result.note,
    )


def _all_questions(rows: Sequence[ResponseRow], seed: int, n_boot: int) -> list[QuestionStats]:
    return [_question_stats(rows, q.key, q.text, seed, n_boot) for q in QUESTIONS]


def study_stats(session: Session, study: Study, *, n_boot: int = BOOTSTRAP_RESAMPLES) -> StudyStats:
    rows = list(repository.response_rows(session, study))
    by_reader: dict[int, list[ResponseRow]] = defaultdict(list)
    for r in rows:
        by_reader[r.reader_id].append(r)
    return StudyStats(
        study_id=study.id,
        readers=len(by_reader),
        answered_cases=sum(r.revisions > 0 for r in rows),
        bootstrap_resamples=n_boot,
        questions=_all_questions(rows, study.seed, n_boot),
        per_reader=[
            ReaderStats(
                reader_id=rid, reader=rs[0].reader, questions=_all_questions(rs, study.seed, n_boot)
            )
            for rid, rs in by_reader.items()
        ],
    )


def streamed_response_rows(sessions: sessionmaker[Session], study: Study) -> Iterator[ResponseRow]:
    """Every response of the study, read as it is sent: a streamed export outlives the request's
    session, so it reads through a session of its own (a read-only one: it never holds the
    write lock that answer saves need)."""
    with sessions() as session:
        yield from repository.response_rows(session, study)
