"""The power of a planned reader study, by seeded simulation of the analysis it will get.

Each simulated study has the planned design (readers, cases per reader, PIE fraction, overlap
cases; backend.stats.simulation) and the assumed effect: PIEs graded `shift` lower or higher on
the latent 1-5 scale, readers differing by `spread`. It is analysed as a real study is
(backend.stats.service): van Elteren's test by permutation within readers, shared cases
permuted as whole cases. Power is the share of
simulated studies whose P is below alpha, with its Wilson interval for the simulation's own error;
below alpha / 3 too, the level the smallest of the three questions' P values meets first under
Holm's procedure, and for the yes/no agreement question (a grade of 3 or more is a yes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.stats.clustered import van_elteren_permutation
from backend.stats.simulation import simulate_cases
from backend.studies.allocation import round_half_up

QUESTIONS = 3  # Holm's procedure runs across the three questions
PERMUTATIONS = 999
# answers x simulations one request may simulate: about 1 s on one core of this project's CI
# machine (each simulated answer is tested twice, with 999 permutations each); the paper's
# 6 x 40 design fits its 200 simulations
MAX_WORK = 50_000
MAX_SIMULATIONS = 200  # where the request leaves the number to the server


@dataclass(frozen=True)
class Plan:
    readers: int
    cases_per_reader: int
    pie_fraction: float
    overlap_cases: int
    shift: float  # PIE minus non-PIE on the latent scale (about grade points on 1-5)
    spread: float  # SD of the readers' own levels
    case_spread: float = 0.0  # SD of a case's own effect, shared by the readers who read it

    def answers(self) -> int:
        return self.readers * (self.cases_per_reader + self.overlap_cases)


@dataclass(frozen=True)
class Rate:
    value: float
    ci: tuple[float, float]  # Wilson 95% interval: the error of a finite simulation


@dataclass(frozen=True)
class Power:
    method: str
    simulations: int
    alpha: float
    scale: Rate  # a 1-5 question at alpha
    scale_holm_first: Rate  # a 1-5 question at alpha / 3
    agreement: Rate  # the yes/no question at alpha
    seed: int


def _wilson(hits: int, n: int, z: float = 1.959963984540054) -> Rate:
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Rate(p, (float(max(0.0, centre - half)), float(min(1.0, centre + half))))


def check(plan: Plan, simulations: int) -> None:
    """A ValueError naming the problem where the plan cannot be simulated."""
    if plan.readers < 1 or plan.cases_per_reader < 0 or plan.overlap_cases < 0:
        raise ValueError("readers must be at least 1, cases and overlap cases at least 0")
    if not 0.0 < plan.pie_fraction < 1.0:
        raise ValueError("pie_fraction must lie strictly between 0 and 1: both groups are needed")
    pies = round_half_up(plan.cases_per_reader * plan.pie_fraction) + round_half_up(
        plan.overlap_cases * plan.pie_fraction
    )
    if not 0 < pies < plan.cases_per_reader + plan.overlap_cases:
        raise ValueError(
            f"the plan gives each reader {pies} PIE cases of {plan.cases_per_reader + plan.overlap_cases}: "
            "each reader needs PIE and non-PIE cases (change pie_fraction or the cases)"
        )
    if plan.spread < 0 or plan.case_spread < 0:
        raise ValueError("spread and case_spread cannot be negative")
    if not 10 <= simulations <= 5000:
        raise ValueError("simulations must lie between 10 and 5,000")


def within_one_request(plan: Plan, simulations: int) -> None:
    """A ValueError where the plan is more than one API request may simulate."""
    if plan.answers() * simulations > MAX_WORK:
        raise ValueError(
            f"{plan.answers():,} answers x {simulations:,} simulations is more than this server "
            f"simulates in one request ({MAX_WORK:,} answers in all): ask for at most "
            f"{fitting(plan)} simulations"
            + ("" if fitting(plan) >= 10 else ", fewer than the 10 needed: plan a smaller study")
        )


def fitting(plan: Plan) -> int:
    """The most simulations of the plan one request may run."""
    return min(MAX_SIMULATIONS, MAX_WORK // max(plan.answers(), 1))


def power(plan: Plan, *, simulations: int = 200, alpha: float = 0.05, seed: int = 0) -> Power:
    check(plan, simulations)
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must lie between 0 and 1")
    rng = np.random.default_rng(seed)
    scale = holm_first = agree = 0
    for i in range(simulations):
        values, pie, reader, case = simulate_cases(
            rng, shift=plan.shift, readers=plan.readers, cases=plan.cases_per_reader,
            spread=plan.spread, pie_fraction=plan.pie_fraction, overlap=plan.overlap_cases,
            case_spread=plan.case_spread,
        )  # fmt: skip
        p = _p(values, pie, reader, case, seed + i)
        scale += p < alpha
        holm_first += p < alpha / QUESTIONS
        agree += _p((values >= 3).astype(float), pie, reader, case, seed + i) < alpha
    return Power(
        method=(
            f"{simulations:,} simulated studies of the plan, each tested as a study is: van "
            f"Elteren's test, mid-P from {PERMUTATIONS:,} permutations within readers"
        ),
        simulations=simulations,
        alpha=alpha,
        scale=_wilson(scale, simulations),
        scale_holm_first=_wilson(holm_first, simulations),
        agreement=_wilson(agree, simulations),
        seed=seed,
    )


def _p(
    values: np.ndarray, pie: np.ndarray, reader: np.ndarray, case: np.ndarray, seed: int
) -> float:
    """The test's P; 1 where nothing varies to be tested (no test: no rejection)."""
    test = van_elteren_permutation(
        values, pie, reader, case=case, permutations=PERMUTATIONS, seed=seed
    )
    return 1.0 if test is None else test.p
