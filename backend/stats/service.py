"""A study's statistics: PIE vs non-PIE per question, overall and per reader, counting what the
coordinator chose (complete cases only by default, readers left out by id).

For each question: the paper's pooled Kruskal-Wallis; the reader-aware test (van Elteren's, by
permutation within readers), Holm-adjusted across the three questions; a signed effect size
(Cliff's delta within readers) with a bootstrap interval; and a GEE with readers as clusters,
shown with the caution that its variance is anti-conservative with few readers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from backend.errors import InvalidInputError
from backend.reading.service import QUESTIONS
from backend.stats import agreement, clustered, compute, power, repository
from backend.stats.repository import ResponseRow, RevisionRow
from backend.stats.schemas import (
    AgreementStats,
    EffectSize,
    EstimateRead,
    GroupSummaryRead,
    Inclusion,
    ModelResult,
    PairKappaRead,
    PowerRead,
    PowerRequest,
    QuestionStats,
    RateRead,
    ReaderAwareTest,
    ReaderStats,
    StudyStats,
)
from backend.studies.models import Study

BOOTSTRAP_RESAMPLES = clustered.BOOTSTRAP
PERMUTATIONS = clustered.PERMUTATIONS
MIN_READER_ANSWERS = 5  # per group: fewer and a reader's own test says little
Rule = Literal["complete", "all"]
POOLED_NOTE = (
    "Kruskal-Wallis on every answer pooled, as if independent (the paper's test); an overlap "
    "case counts once for each reader who answered it"
)
MODEL_CAUTION = (
    "with so few readers as clusters, the sandwich variance of a GEE is anti-conservative even "
    "bias-reduced (benchmarks/stats_validity.py measures it on simulated null studies): the "
    "permutation test is the reader-aware test to report"
)


def _complete(r: ResponseRow) -> bool:
    return r.agree is not None and r.quality is not None and r.difficulty is not None


def _question_stats(
    rows: Sequence[ResponseRow], key: str, text: str, seed: int, n_boot: int, permutations: int,
    *, model: bool,
) -> QuestionStats:  # fmt: skip
    given = [r for r in rows if getattr(r, key) is not None]
    values = np.array([float(getattr(r, key)) for r in given])
    is_pie = np.array([r.is_pie for r in given], dtype=bool)
    readers = np.array([r.reader_id for r in given], dtype=np.int64)
    cases = np.array([r.case_id for r in given], dtype=np.int64)  # overlap cases: one id, shared
    binary = key == "agree"
    pooled = compute.compare(values[is_pie], values[~is_pie], binary=binary)
    test = clustered.van_elteren_permutation(
        values, is_pie, readers, case=cases, permutations=permutations, seed=seed
    )
    effect = clustered.stratified_cliffs_delta(
        values, is_pie, readers, case=cases, resamples=n_boot, seed=seed
    )
    fit = clustered.gee_fit(values, is_pie, readers, binary=binary) if model else None
    notes = [pooled.note] if pooled.note else []
    if test is None:
        notes.append("no reader has varying answers in both groups: no reader-aware test")
    return QuestionStats(
        question=key,
        text=text,
        pie=GroupSummaryRead(**vars(pooled.pie)),
        non_pie=GroupSummaryRead(**vars(pooled.non_pie)),
        h=pooled.test.h if pooled.test else None,
        df=pooled.test.df if pooled.test else None,
        p=pooled.test.p if pooled.test else None,
        epsilon_squared=pooled.epsilon_squared,
        pooled_note=POOLED_NOTE,
        reader_aware=None
        if test is None
        else ReaderAwareTest(
            method=test.method,
            statistic=test.statistic,
            p=test.p,
            p_holm=None,
            permutations=test.permutations,
            readers=test.readers,
        ),
        effect=None
        if effect is None
        else EffectSize(
            method=effect.method,
            estimate=effect.estimate,
            ci=effect.ci,
            level=effect.level,
            percent_yes_difference=100 * effect.estimate if binary else None,
        ),
        model=None
        if fit is None
        else ModelResult(
            method=fit.method, estimate=fit.estimate, ci=fit.ci, p=fit.p, caution=MODEL_CAUTION
        ),
        note="; ".join(notes) or None,
    )


def _all_questions(
    rows: Sequence[ResponseRow], seed: int, n_boot: int, permutations: int, *, model: bool
) -> list[QuestionStats]:
    out = [
        _question_stats(rows, q.key, q.text, seed, n_boot, permutations, model=model)
        for q in QUESTIONS
    ]
    adjusted = clustered.holm([q.reader_aware.p if q.reader_aware else None for q in out])
    for q, p in zip(out, adjusted, strict=True):
        if q.reader_aware is not None:
            q.reader_aware.p_holm = p
    return out


def _inclusion(
    rule: Rule, excluded: list[int], counted: Sequence[ResponseRow], everything: int
) -> Inclusion:
    readers = {r.reader_id for r in counted}
    revoked = sorted({r.reader for r in counted if r.reader_revoked})
    text = (
        f"{'complete cases only (all three questions answered)' if rule == 'complete' else 'every answer given'}: "
        f"{len(counted)} of {everything} reader x case pairs, {len(readers)} readers"
    )  # fmt: skip
    if excluded:
        text += f"; readers left out: {', '.join(map(str, excluded))}"
    if revoked:
        text += f"; withdrawn readers counted: {', '.join(revoked)}"
    return Inclusion(
        rule=rule, excluded_readers=excluded, readers=len(readers), cases=len(counted), text=text
    )


def _estimate(e: agreement.Estimate | None) -> EstimateRead | None:
    return None if e is None else EstimateRead(**vars(e))


def _agreement(rows: Sequence[ResponseRow], seed: int, resamples: int) -> AgreementStats:
    overlap = [r for r in rows if r.is_overlap]
    readers = sorted({r.reader_id for r in overlap})
    cases = sorted({r.case_id for r in overlap})
    column = {rid: j for j, rid in enumerate(readers)}
    row_of = {cid: i for i, cid in enumerate(cases)}

    def matrix(key: str) -> np.ndarray:
        m = np.full((len(cases), len(readers)), np.nan)
        for r in overlap:
            v = getattr(r, key)
            if v is not None:
                m[row_of[r.case_id], column[r.reader_id]] = float(v)
        return m

    scales = ("quality", "difficulty")
    mats = {key: matrix(key) for key in ("agree", *scales)}
    note = None
    if len(cases) < agreement.MIN_CASES or len(readers) < 2:
        note = (
            f"agreement needs at least {agreement.MIN_CASES} overlap cases read by 2 readers or "
            f"more (this study counts {len(cases)} overlap cases, {len(readers)} readers)"
        )
    return AgreementStats(
        overlap_cases=len(cases),
        readers=len(readers),
        fleiss_kappa_agree=_estimate(
            agreement.fleiss_kappa(mats["agree"], resamples=resamples, seed=seed)
        ),
        weighted_kappa={
            key: [
                PairKappaRead(
                    reader_a=k.reader_a,
                    reader_b=k.reader_b,
                    estimate=EstimateRead(**vars(k.estimate)),
                )
                for k in agreement.pairwise_weighted_kappa(
                    mats[key], readers, resamples=resamples, seed=seed
                )
            ]
            for key in scales
        },
        krippendorff_alpha={
            key: _estimate(agreement.krippendorff_alpha(mats[key], resamples=resamples, seed=seed))
            for key in scales
        },
        icc={key: _estimate(agreement.icc_2_1(mats[key])) for key in scales},
        note=note,
    )


def study_stats(
    session: Session, study: Study, *, rule: Rule = "complete",
    exclude_readers: Sequence[int] = (), n_boot: int = BOOTSTRAP_RESAMPLES,
    permutations: int = PERMUTATIONS, agreement_resamples: int = agreement.RESAMPLES,
) -> StudyStats:  # fmt: skip
    everything = list(repository.response_rows(session, study))
    excluded = sorted(set(exclude_readers))
    rows = [
        r
        for r in everything
        if r.reader_id not in excluded and (_complete(r) if rule == "complete" else r.revisions > 0)
    ]
    by_reader: dict[int, list[ResponseRow]] = defaultdict(list)
    for r in rows:
        by_reader[r.reader_id].append(r)
    per_reader = []
    for rid, rs in by_reader.items():
        pie = sum(r.is_pie for r in rs)
        few = min(pie, len(rs) - pie) < MIN_READER_ANSWERS
        per_reader.append(
            ReaderStats(
                reader_id=rid,
                reader=rs[0].reader,
                revoked=rs[0].reader_revoked,
                answers=len(rs),
                questions=_all_questions(rs, study.seed, n_boot, permutations, model=False),
                note=(
                    f"too few answers for this reader's own test to say much ({pie} PIE, "
                    f"{len(rs) - pie} non-PIE; at least {MIN_READER_ANSWERS} of each wanted)"
                    if few
                    else None
                ),
            )
        )
    return StudyStats(
        study_id=study.id,
        readers=len(by_reader),
        answered_cases=sum(r.revisions > 0 for r in everything if r.reader_id not in excluded),
        inclusion=_inclusion(rule, excluded, rows, len(everything)),
        permutations=permutations,
        bootstrap_resamples=n_boot,
        questions=_all_questions(rows, study.seed, n_boot, permutations, model=True),
        agreement=_agreement(rows, study.seed, agreement_resamples),
        per_reader=per_reader,
    )


def streamed_response_rows(sessions: sessionmaker[Session], study: Study) -> Iterator[ResponseRow]:
    """Every response of the study, read as it is sent: a streamed export outlives the request's
    session, so it reads through a session of its own (a read-only one: it never holds the
    write lock that answer saves need)."""
    with sessions() as session:
        yield from repository.response_rows(session, study)


def streamed_revision_rows(sessions: sessionmaker[Session], study: Study) -> Iterator[RevisionRow]:
    """Every answer revision of the study, through a read-only session of its own (as above)."""
    with sessions() as session:
        yield from repository.revision_rows(session, study)


def plan_power(body: PowerRequest) -> PowerRead:
    """The power of a planned study (backend.stats.power); a 422 naming the problem where the
    plan cannot be simulated."""
    plan = power.Plan(
        readers=body.readers, cases_per_reader=body.cases_per_reader,
        pie_fraction=body.pie_fraction, overlap_cases=body.overlap_cases, shift=body.shift,
        spread=body.spread, case_spread=body.case_spread,
    )  # fmt: skip
    simulations = power.fitting(plan) if body.simulations is None else body.simulations
    try:
        power.within_one_request(plan, simulations)
        result = power.power(plan, simulations=simulations, alpha=body.alpha, seed=body.seed)
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from exc
    return PowerRead(
        method=result.method,
        simulations=result.simulations,
        alpha=result.alpha,
        seed=result.seed,
        scale=RateRead(**vars(result.scale)),
        scale_holm_first=RateRead(**vars(result.scale_holm_first)),
        agreement=RateRead(**vars(result.agreement)),
        answers=plan.answers(),
    )
