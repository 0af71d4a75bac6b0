"""20 enrollments at once never share an image. In the PostgreSQL pass of `make test` this runs
against PostgreSQL, where the transactions really overlap."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from backend.auth.models import Role
from backend.db import make_sessionmaker
from backend.studies import service
from backend.studies.schemas import StudyCreate
from tests.backend.studies.helpers import check_invariants, reader_lists
from tests.factories import make_dataset, make_pie_set, make_user

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database


def test_twenty_parallel_enrollments(engine: Engine, session: Session, tmp_path: Path) -> None:
    ds = make_dataset(session, tmp_path, 480)
    pie_set = make_pie_set(session, ds, n_pies=240)
    owner = make_user(session, "parallel", Role.coordinator)
    study = service.create_study(
        session,
        owner,
        StudyCreate(
            name="race", pie_set_id=pie_set.id, cases_per_reader=20, planned_readers=20, seed=1
        ),
    )
    session.commit()
    factory = make_sessionmaker(engine)
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def enroll(i: int) -> None:
        try:
            barrier.wait()  # before any transaction: a waiting thread must hold no lock
            with factory() as s:
                user = s.get(type(owner), owner.id)
                assert user is not None
                service.enroll_readers(s, study.id, user, [f"reader {i}"])
                s.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=enroll, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    lists = reader_lists(session, study.id)
    assert sorted(lists) == list(range(20))
    check_invariants(lists, 10, 10, 0)
