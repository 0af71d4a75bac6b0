"""Allocation invariants over random pools, designs and reader counts (hypothesis)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from backend.auth.models import Role, User
from backend.datasets.models import Dataset
from backend.db import make_sessionmaker
from backend.errors import ConflictError, InvalidInputError
from backend.studies import allocation, service
from backend.studies.allocation import AllocationError, Design
from backend.studies.schemas import StudyCreate
from tests.backend.studies.helpers import check_invariants, reader_lists
from tests.factories import make_dataset, make_pie_set, make_user

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database

designs = st.builds(
    Design,
    cases_per_reader=st.integers(1, 30),
    pie_fraction=st.sampled_from([0.0, 0.1, 0.25, 1 / 3, 0.5, 0.6, 0.75, 1.0]),
    overlap_cases=st.integers(0, 8),
    seed=st.integers(0, 2**31),
)


def simulate(
    design: Design, n_pies: int, n_non: int, readers: int
) -> dict[int, list[tuple[int, bool, bool]]]:
    pies = [(f"p{i:04d}", i) for i in range(n_pies)]
    non = [(f"n{i:04d}", 10_000 + i) for i in range(n_non)]
    pie_order = allocation.shuffled(pies, design.seed, "pies")
    non_order = allocation.shuffled(non, design.seed, "non-pies")
    ov = allocation.overlap_slices(design)
    overlap = {
        i for _, i in allocation.take(pie_order, ov.pies) + allocation.take(non_order, ov.non_pies)
    }
    out = {}
    for slot in range(readers):
        s = allocation.reader_slices(design, slot)
        own = {
            i
            for _, i in allocation.take(pie_order, s.pies) + allocation.take(non_order, s.non_pies)
        }
        order = allocation.reader_order(sorted(own | overlap), design.seed, slot)
        out[slot] = [(i, i < 10_000, i in overlap) for i in order]
    return out


@given(
    design=designs,
    n_pies=st.integers(0, 120),
    n_non=st.integers(0, 120),
    readers=st.integers(1, 12),
)
@settings(max_examples=400, deadline=None)
def test_pure_allocation_invariants(design: Design, n_pies: int, n_non: int, readers: int) -> None:
    limit = allocation.max_readers(design, n_pies, n_non)
    try:
        allocation.check_capacity(design, n_pies, n_non, 0, readers)
    except AllocationError as exc:
        # refused exactly when the pool cannot serve that many readers, and the message says why
        assert limit is not None and readers > limit
        assert "need" in str(exc)
        return
    assert limit is None or readers <= limit
    lists = simulate(design, n_pies, n_non, readers)
    check_invariants(
        lists, design.pies_per_reader, design.non_pies_per_reader, design.overlap_cases
    )
    assert all(len(v) == design.cases_seen_per_reader for v in lists.values())
    # enrolling more readers later leaves earlier sets unchanged; the same seed gives the same lists
    if readers > 1:
        fewer = simulate(design, n_pies, n_non, readers - 1)
        assert fewer == {k: lists[k] for k in fewer}
    assert simulate(design, n_pies, n_non, readers) == lists


@given(cases=st.integers(1, 500), fraction=st.floats(0, 1))
def test_pies_per_reader_rounds_half_up(cases: int, fraction: float) -> None:
    d = Design(cases, fraction, 0, 0)
    exact = cases * fraction
    assert abs(d.pies_per_reader - exact) <= 0.5 + 1e-9
    assert d.pies_per_reader + d.non_pies_per_reader == cases
    assert Design(5, 0.5, 0, 0).pies_per_reader == 3
    assert Design(40, 0.5, 0, 0).pies_per_reader == 20


@pytest.fixture
def pool(session: Session, tmp_path: Path) -> dict[str, int]:
    ds = make_dataset(session, tmp_path, 120)
    owner = make_user(session, "prop-owner", Role.coordinator)
    session.commit()
    return {"dataset": ds.id, "owner": owner.id}


@given(
    n_pies=st.integers(2, 60),
    cases=st.integers(1, 12),
    fraction=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]),
    overlap=st.integers(0, 4),
    batches=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    seed=st.integers(0, 1000),
)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_service_allocation_invariants(
    engine: Engine,
    pool: dict[str, int],
    n_pies: int,
    cases: int,
    fraction: float,
    overlap: int,
    batches: list[int],
    seed: int,
) -> None:
    factory = make_sessionmaker(engine)
    with factory() as s:
        ds = s.get(Dataset, pool["dataset"])
        owner = s.get(User, pool["owner"])
        assert ds is not None and owner is not None
        pie_set = make_pie_set(s, ds, n_pies, name=f"p{seed}-{n_pies}", seed=seed)
        design = Design(cases, fraction, overlap, seed)
        limit = allocation.max_readers(design, n_pies, 120 - n_pies)
        try:
            study = service.create_study(
                s,
                owner,
                StudyCreate(
                    name="prop",
                    pie_set_id=pie_set.id,
                    cases_per_reader=cases,
                    pie_fraction=fraction,
                    overlap_cases=overlap,
                    planned_readers=1,
                    seed=seed,
                ),
            )
        except InvalidInputError:
            assert limit is not None and limit < 1
            s.rollback()
            return
        s.commit()
        enrolled = 0
        for n, batch in enumerate(batches):
            names = [f"r{n}-{i}" for i in range(batch)]
            try:
                service.enroll_readers(s, study.id, owner, names)
                s.commit()
                enrolled += batch
            except ConflictError as exc:
                s.rollback()
                assert limit is not None and enrolled + batch > limit
                assert "need" in str(exc)
        lists = reader_lists(s, study.id)
        assert len(lists) == enrolled
        check_invariants(lists, design.pies_per_reader, design.non_pies_per_reader, overlap)
