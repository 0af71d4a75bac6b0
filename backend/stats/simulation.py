"""Simulated reader studies with reader effects, for validity checks and power.

Each reader has their own level (a normal latent shift, SD `spread`) and their own use of the
1-5 scale (thresholds stretched by a log-normal factor); a case's grade is the latent value
(the reader's level, plus `shift` for a PIE, plus the case's own effect, plus unit normal noise)
cut at those thresholds, which lie 1 apart: a latent shift of 0.4 is about 0.4 grade points.
Agreement (yes/no) is a grade of 3 or more.

A design as a study allocates it (backend.studies.allocation): each reader reads
`cases` cases of their own, round-half-up(cases x pie_fraction) of them PIEs, plus `overlap`
cases that every reader reads. A case's own effect (SD `case_spread`) is the same for every
reader who reads it, so overlap cases' answers are correlated across readers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from backend.studies.allocation import round_half_up

Study = tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.int64]]
# (values, is_pie, reader, case): a shared case has one id for every reader who read it
StudyWithCases = tuple[
    npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.int64], npt.NDArray[np.int64]
]
CUTS = np.array([-1.5, -0.5, 0.5, 1.5])


def _pies(rng: np.random.Generator, n: int, fraction: float) -> npt.NDArray[np.bool_]:
    return rng.permutation(np.arange(n) < round_half_up(n * fraction))


def simulate(
    rng: np.random.Generator, *, shift: float = 0.0, readers: int = 6, cases: int = 40,
    spread: float = 0.8, pie_fraction: float = 0.5, overlap: int = 0, case_spread: float = 0.0,
) -> Study:  # fmt: skip
    """(values, is_pie, reader) for one study (simulate_cases without the case ids)."""
    values, pie, reader, _ = simulate_cases(
        rng, shift=shift, readers=readers, cases=cases, spread=spread, pie_fraction=pie_fraction,
        overlap=overlap, case_spread=case_spread,
    )  # fmt: skip
    return values, pie, reader


def simulate_cases(
    rng: np.random.Generator, *, shift: float = 0.0, readers: int = 6, cases: int = 40,
    spread: float = 0.8, pie_fraction: float = 0.5, overlap: int = 0, case_spread: float = 0.0,
) -> StudyWithCases:  # fmt: skip
    """(values, is_pie, reader, case) for one study: per reader `cases` own cases (ids
    reader x cases + i), then the `overlap` shared ones (ids readers x cases + j)."""
    shared_pie = _pies(rng, overlap, pie_fraction) if overlap else np.zeros(0, dtype=bool)
    shared_effect = rng.normal(0, case_spread, overlap) if overlap and case_spread else 0.0
    values, pies, ids, case_ids = [], [], [], []
    shared_ids = readers * cases + np.arange(overlap)
    for r in range(readers):
        level = rng.normal(0, spread)
        cuts = CUTS * np.exp(rng.normal(0, 0.2))
        pie = _pies(rng, cases, pie_fraction)
        own = rng.normal(0, case_spread, cases) if case_spread else 0.0
        latent = rng.normal(level + shift * pie + own, 1.0)
        if overlap:
            latent = np.concatenate(
                [latent, rng.normal(level + shift * shared_pie + shared_effect, 1.0)]
            )
            pie = np.concatenate([pie, shared_pie])
        values.append(1.0 + np.searchsorted(cuts, latent))
        pies.append(pie)
        ids.append(np.full(pie.size, r))
        case_ids.append(np.concatenate([r * cases + np.arange(cases), shared_ids]))
    return (
        np.concatenate(values),
        np.concatenate(pies),
        np.concatenate(ids),
        np.concatenate(case_ids),
    )
