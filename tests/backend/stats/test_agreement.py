"""Agreement on overlap cases, cross-checked: pingouin's ICC, plain formulas for Fleiss' and
Cohen's weighted kappa, and Krippendorff's alpha on its properties."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pingouin
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.stats.agreement import (
    fleiss_kappa,
    icc_2_1,
    krippendorff_alpha,
    pairwise_weighted_kappa,
)
from tests.backend.conftest import StudySetup


def ratings(seed: int, cases: int = 30, readers: int = 4, noise: float = 0.8) -> np.ndarray:
    """Readers who mostly agree: a case's true grade plus each reader's own noise and bias."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(3, 1.1, cases)
    bias = rng.normal(0, 0.3, readers)
    return np.clip(
        np.rint(truth[:, None] + bias[None, :] + rng.normal(0, noise, (cases, readers))), 1, 5
    )


def test_icc_equals_pingouin_with_its_interval() -> None:
    x = ratings(1)
    got = icc_2_1(x)
    long = pd.DataFrame(
        [(i, j, x[i, j]) for i in range(x.shape[0]) for j in range(x.shape[1])],
        columns=["case", "reader", "grade"],
    )
    ref = pingouin.intraclass_corr(long, targets="case", raters="reader", ratings="grade")
    row = ref.set_index("Type").loc["ICC(A,1)"]  # two-way random, absolute agreement, single
    assert got is not None and got.cases == 30
    assert got.value == pytest.approx(row["ICC"], abs=1e-10)
    assert got.ci == pytest.approx(tuple(row["CI95"]), abs=0.006)  # pingouin rounds to 2 places


def test_fleiss_kappa_equals_its_formula() -> None:
    rng = np.random.default_rng(2)
    truth = rng.random(40) < 0.5
    x = np.where(rng.random((40, 5)) < 0.8, truth[:, None], ~truth[:, None]).astype(float)
    got = fleiss_kappa(x, resamples=300, seed=1)
    n_raters = x.shape[1]
    counts = np.stack([(x == 0).sum(axis=1), (x == 1).sum(axis=1)], axis=1)
    p_j = counts.sum(axis=0) / counts.sum()
    p_i = (np.sum(counts**2, axis=1) - n_raters) / (n_raters * (n_raters - 1))
    kappa = (p_i.mean() - np.sum(p_j**2)) / (1 - np.sum(p_j**2))
    assert got is not None and got.value == pytest.approx(kappa, abs=1e-12)
    assert got.ci is not None and got.ci[0] < got.value < got.ci[1]
    x[0, 0] = np.nan  # a case one reader left out is not counted
    assert fleiss_kappa(x, resamples=50).cases == 39  # type: ignore[union-attr]


def test_weighted_kappa_equals_its_formula_for_every_pair() -> None:
    x = ratings(3, readers=3)
    x[0, 2] = np.nan
    pairs = pairwise_weighted_kappa(x, [11, 12, 13], resamples=200, seed=2)
    assert [(p.reader_a, p.reader_b) for p in pairs] == [(11, 12), (11, 13), (12, 13)]
    for p in pairs:
        a, b = [11, 12, 13].index(p.reader_a), [11, 12, 13].index(p.reader_b)
        both = x[~np.isnan(x[:, [a, b]]).any(axis=1)][:, [a, b]].astype(int)
        observed = np.zeros((5, 5))
        for u, v in both:
            observed[u - 1, v - 1] += 1
        observed /= observed.sum()
        expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
        w = (np.subtract.outer(np.arange(5), np.arange(5)) ** 2) / 16
        kappa = 1 - (w * observed).sum() / (w * expected).sum()
        assert p.estimate.value == pytest.approx(kappa, abs=1e-12)
        assert p.estimate.cases == len(both)


def test_krippendorff_alpha_is_one_for_perfect_agreement_and_falls_with_noise() -> None:
    x = ratings(4, noise=0.0)
    x = np.repeat(x[:, :1], 4, axis=1)  # every reader gives the same grade
    perfect = krippendorff_alpha(x, resamples=100)
    assert perfect is not None and perfect.value == pytest.approx(1.0)
    noisy = krippendorff_alpha(ratings(4, noise=1.5), resamples=200, seed=3)
    fair = krippendorff_alpha(ratings(4, noise=0.5), resamples=200, seed=3)
    assert noisy is not None and fair is not None and noisy.value < fair.value < 1.0
    assert fair.ci is not None and fair.ci[0] < fair.value < fair.ci[1]
    with_gaps = ratings(4)
    with_gaps[:3, 1:] = np.nan  # three cases with one answer: not pairable, left out
    assert krippendorff_alpha(with_gaps, resamples=50).cases == 27  # type: ignore[union-attr]


def test_too_few_cases_give_none() -> None:
    x = ratings(5, cases=4)
    assert icc_2_1(x) is None and krippendorff_alpha(x) is None and fleiss_kappa(x) is None
    assert pairwise_weighted_kappa(x, [1, 2, 3, 4]) == []


@pytest.mark.database
def test_the_study_reports_agreement_on_its_overlap_cases(
    app: FastAPI, client: TestClient, make_study: Callable[..., StudySetup]
) -> None:
    """Three readers, 10 shared cases each answered by all: the API's agreement equals pingouin's
    ICC and the formulas on the matrix rebuilt from the JSON export."""
    s = make_study(readers=3, cases_per_reader=8, overlap_cases=10)
    rng = np.random.default_rng(9)
    for index in range(3):
        c = s.reader_client(app, index)
        total = c.get("/api/reader/me").json()["progress"]["total"]
        for position in range(1, total + 1):
            body = {
                "answer_id": f"agr-{index}-{position}-{rng.integers(1 << 40):x}",
                "agree": bool(rng.random() < 0.6),
                "quality": int(rng.integers(1, 6)),
                "difficulty": int(rng.integers(1, 6)),
            }
            assert c.post(f"/api/reader/cases/{position}/answer", json=body).status_code == 200
    stats = client.get(f"/api/studies/{s.study_id}/stats", headers=s.coordinator).json()
    agreement = stats["agreement"]
    assert agreement["overlap_cases"] == 10 and agreement["readers"] == 3
    doc = client.get(f"/api/studies/{s.study_id}/export?format=json", headers=s.coordinator).json()
    shared = [r for r in doc["responses"] if r["overlap"]]
    assert len(shared) == 30
    long = pd.DataFrame(shared)[["image", "reader_id", "quality"]]
    ref = pingouin.intraclass_corr(long, targets="image", raters="reader_id", ratings="quality")
    icc = ref.set_index("Type").loc["ICC(A,1)", "ICC"]
    assert agreement["icc"]["quality"]["value"] == pytest.approx(icc, abs=1e-10)
    assert agreement["icc"]["quality"]["cases"] == 10
    assert len(agreement["weighted_kappa"]["quality"]) <= 3
    assert (
        agreement["fleiss_kappa_agree"] is None
        or -1 <= agreement["fleiss_kappa_agree"]["value"] <= 1
    )
    assert agreement["note"] is None
