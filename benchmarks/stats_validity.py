"""Which reader-aware test to trust with 6 readers: the stratified permutation test against GEE.

Simulates studies of the paper's shape (6 readers x 40 cases, 20 PIE + 20 non-PIE each) with
reader effects (each reader's own level and use of the scale: backend.stats.simulation) and no
PIE effect, and reports how often each test gives P < 0.05: van Elteren's test by permutation within readers (mid-P), and GEE with readers as
clusters (ordinal for the 1-5 scale, logistic for agreement), with the plain robust sandwich
variance and the bias-reduced one (Mancl & DeRouen). Then the power of each at a stated shift.
Last, a design with overlap cases correlated across readers (6 readers x 10 own + 30 shared
cases, each case with its own effect, SD 1, that all its readers share): the within-reader
permutation against the one that permutes shared cases as whole cases.

    uv run python benchmarks/stats_validity.py --sets 400
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.stats.clustered import van_elteren_permutation  # noqa: E402
from backend.stats.simulation import simulate, simulate_cases  # noqa: E402


def gee_p(values: np.ndarray, pie: np.ndarray, reader: np.ndarray, binary: bool, cov: str) -> float:
    import statsmodels.api as sm

    x = pie.astype(float)[:, None]
    if binary:
        model = sm.GEE(
            values, sm.add_constant(x), groups=reader, family=sm.families.Binomial(),
            cov_struct=sm.cov_struct.Independence(),
        )  # fmt: skip
    else:
        model = sm.OrdinalGEE(values, x, groups=reader, cov_struct=sm.cov_struct.Independence())
    return float(np.asarray(model.fit(cov_type=cov).pvalues)[-1])


def rates(sets: int, shift: float, binary: bool, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    hits = {"permutation (van Elteren, mid-P)": 0, "GEE robust": 0, "GEE bias-reduced": 0}
    for i in range(sets):
        values, pie, reader = simulate(rng, shift=shift)
        if binary:
            values = (values >= 3).astype(float)
        test = van_elteren_permutation(values, pie, reader, permutations=999, seed=i)
        hits["permutation (van Elteren, mid-P)"] += test is not None and test.p < 0.05
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hits["GEE robust"] += gee_p(values, pie, reader, binary, "robust") < 0.05
            hits["GEE bias-reduced"] += gee_p(values, pie, reader, binary, "bias_reduced") < 0.05
    return {k: round(v / sets, 4) for k, v in hits.items()}


def overlap_rates(sets: int, shift: float, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    hits = {
        "permutation within readers": 0,
        "permutation, shared cases whole": 0,
        "GEE bias-reduced": 0,
    }
    for i in range(sets):
        values, pie, reader, case = simulate_cases(
            rng, shift=shift, cases=10, overlap=30, case_spread=1.0
        )
        naive = van_elteren_permutation(values, pie, reader, permutations=999, seed=i)
        whole = van_elteren_permutation(values, pie, reader, case=case, permutations=999, seed=i)
        hits["permutation within readers"] += naive is not None and naive.p < 0.05
        hits["permutation, shared cases whole"] += whole is not None and whole.p < 0.05
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hits["GEE bias-reduced"] += gee_p(values, pie, reader, False, "bias_reduced") < 0.05
    return {k: round(v / sets, 4) for k, v in hits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=400)
    parser.add_argument("--shift", type=float, default=0.4, help="latent PIE shift for power")
    args = parser.parse_args()
    started = time.perf_counter()
    out = {
        "sets": args.sets,
        "binomial_se_at_5pct": round(float(np.sqrt(0.05 * 0.95 / args.sets)), 4),
        "false_positive_rate": {
            "quality (1-5)": rates(args.sets, 0.0, False, 1),
            "agreement (yes/no)": rates(args.sets, 0.0, True, 2),
        },
        f"power_at_shift_{args.shift}": {
            "quality (1-5)": rates(args.sets, args.shift, False, 3),
            "agreement (yes/no)": rates(args.sets, args.shift, True, 4),
        },
        "overlap_design_quality (1-5)": {
            "false_positive_rate": overlap_rates(args.sets, 0.0, 5),
            f"power_at_shift_{args.shift}": overlap_rates(args.sets, args.shift, 6),
        },
    }
    out["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
