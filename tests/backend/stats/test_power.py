"""The power planner: seeded simulation of a planned design, analysed as a study is.

Under no effect its "power" is the test's false-positive rate, so it must sit at the level; it
grows with the effect and with the readers; overlap cases whose answers are correlated across
readers are worth less than as many cases of one's own; and the API refuses what it cannot
simulate with a message naming the problem."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from backend.auth.models import Role
from backend.stats.power import Plan, power
from backend.stats.simulation import simulate

PAPER = Plan(
    readers=6, cases_per_reader=40, pie_fraction=0.5, overlap_cases=0, shift=0.4, spread=0.8
)


def test_the_simulated_design_is_the_allocated_design() -> None:
    rng = np.random.default_rng(1)
    values, pie, reader = simulate(
        rng, readers=3, cases=10, pie_fraction=0.35, overlap=5, case_spread=0.5
    )
    assert values.size == 3 * 15 and set(np.unique(values)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    for r in range(3):
        mine = pie[reader == r]
        assert mine[:10].sum() == 4  # round-half-up(10 x 0.35), as the allocation counts
        assert mine[10:].sum() == 2  # round-half-up(5 x 0.35): the shared cases
    # the shared cases are the same cases, so the same groups, for every reader
    assert (pie[reader == 0][10:] == pie[reader == 2][10:]).all()


def test_with_no_effect_the_power_is_the_level() -> None:
    null = power(Plan(**{**vars(PAPER), "shift": 0.0}), simulations=400, seed=11)
    print(f"no effect: {null.scale.value:.1%} (1-5), {null.agreement.value:.1%} (agreement)")
    for rate in (null.scale, null.agreement):
        assert 0.025 <= rate.value <= 0.075
    assert null.scale_holm_first.value <= null.scale.value


def test_power_grows_with_the_effect_and_the_readers_and_is_reproducible() -> None:
    base = power(PAPER, simulations=200, seed=5)
    print(f"6 x 40 at a shift of 0.4: {base.scale.value:.1%} {base.scale.ci}")
    assert base == power(PAPER, simulations=200, seed=5)
    lo, hi = base.scale.ci
    assert lo < base.scale.value < hi and 0.6 < base.scale.value < 0.95
    assert base.scale_holm_first.value < base.scale.value
    assert base.agreement.value < base.scale.value  # a yes/no answer carries less
    bigger = power(Plan(**{**vars(PAPER), "shift": 0.8}), simulations=200, seed=5)
    assert bigger.scale.value > 0.99
    fewer = power(Plan(**{**vars(PAPER), "readers": 2}), simulations=200, seed=5)
    assert fewer.scale.ci[1] < base.scale.ci[0]


def test_correlated_overlap_cases_are_worth_less_than_cases_of_ones_own() -> None:
    common = {**vars(PAPER), "cases_per_reader": 10, "shift": 0.5, "case_spread": 1.5}
    shared = power(Plan(**{**common, "overlap_cases": 30}), simulations=300, seed=8)
    own = power(Plan(**{**common, "cases_per_reader": 40}), simulations=300, seed=8)
    print(f"30 shared cases: {shared.scale.value:.1%}; 30 more of one's own: {own.scale.value:.1%}")
    assert shared.scale.ci[1] < own.scale.ci[0]


def test_the_planner_api(client: TestClient, users: object) -> None:
    coordinator = users.headers("planner")  # type: ignore[attr-defined]
    r = client.post("/api/studies/power", json={"simulations": 50}, headers=coordinator)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answers"] == 240 and body["simulations"] == 50
    assert "van Elteren" in body["method"] and "permutations within readers" in body["method"]
    assert 0 <= body["scale"]["ci"][0] <= body["scale"]["value"] <= body["scale"]["ci"][1] <= 1
    again = client.post("/api/studies/power", json={"simulations": 50}, headers=coordinator)
    assert again.json() == body  # seeded
    refused = client.post("/api/studies/power", json={"pie_fraction": 1.0}, headers=coordinator)
    assert refused.status_code == 422 and "pie_fraction" in refused.text
    huge = client.post(
        "/api/studies/power",
        json={"readers": 1000, "cases_per_reader": 2000, "simulations": 5000},
        headers=coordinator,
    )
    assert huge.status_code == 422 and "ask for at most 0 simulations" in huge.json()["error"]
    assert "plan a smaller study" in huge.json()["error"]
    # left to the server: as many simulations as fit in one request, and the answer says so
    big = client.post(
        "/api/studies/power", json={"readers": 30, "cases_per_reader": 100}, headers=coordinator
    )
    assert big.status_code == 200 and big.json()["simulations"] == 50_000 // 3000
    many = client.post(
        "/api/studies/power", json={"readers": 30, "cases_per_reader": 100, "simulations": 100},
        headers=coordinator,
    )  # fmt: skip
    assert many.status_code == 422 and "ask for at most 16 simulations" in many.json()["error"]
    one_group = client.post(
        "/api/studies/power", json={"cases_per_reader": 2, "pie_fraction": 0.2}, headers=coordinator
    )
    assert one_group.status_code == 422 and "PIE and non-PIE" in one_group.json()["error"]
    assert (
        client.post("/api/studies/power", json={}, headers=coordinator).json()["simulations"] == 200
    )
    assert client.post("/api/studies/power", json={}).status_code == 401
    researcher = users.headers("a-researcher", Role.researcher)  # type: ignore[attr-defined]
    assert client.post("/api/studies/power", json={}, headers=researcher).status_code == 403
