"""Simulated reader studies with reader effects, for validity checks and power.

Each reader has their own level (a normal latent shift, SD `spread`) and their own use of the
1-5 scale (thresholds stretched by a log-normal factor); a case's grade is the latent value
(the reader's level, plus `shift` for a PIE, plus unit normal noise) cut at those thresholds.
Agreement (yes/no) is a grade of 3 or more.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Study = tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.int64]]


def simulate(
    rng: np.random.Generator, *, shift: float = 0.0, readers: int = 6, cases: int = 40,
    spread: float = 0.8,
) -> Study:  # fmt: skip
    """(values, is_pie, reader) for one study: `cases` per reader, half of them PIEs."""
    values, pies, ids = [], [], []
    for r in range(readers):
        level = rng.normal(0, spread)
        cuts = np.array([-1.5, -0.5, 0.5, 1.5]) * np.exp(rng.normal(0, 0.2))
        pie = rng.permutation(np.arange(cases) < cases // 2)
        latent = rng.normal(level + shift * pie, 1.0)
        values.append(1.0 + np.searchsorted(cuts, latent))
        pies.append(pie)
        ids.append(np.full(cases, r))
    return np.concatenate(values), np.concatenate(pies), np.concatenate(ids)
