from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.piesets.models import PieSetMember
from backend.studies.models import Assignment, Reader, Study, StudyCase


def reader_lists(session: Session, study_id: int) -> dict[int, list[tuple[int, bool, bool]]]:
    """slot -> [(image id, is_pie, is_overlap)] in the reader's order, straight from the tables."""
    study = session.get(Study, study_id)
    assert study is not None
    rows = session.execute(
        select(
            Reader.slot,
            Assignment.position,
            StudyCase.image_id,
            PieSetMember.is_pie,
            StudyCase.reader_id,
        )
        .join(Assignment, Assignment.reader_id == Reader.id)
        .join(StudyCase, StudyCase.id == Assignment.case_id)
        .join(
            PieSetMember,
            (PieSetMember.image_id == StudyCase.image_id)
            & (PieSetMember.pie_set_id == study.pie_set_id),
        )
        .where(Reader.study_id == study_id)
        .order_by(Reader.slot, Assignment.position)
    ).all()
    out: dict[int, list[tuple[int, bool, bool]]] = {}
    positions: dict[int, list[int]] = {}
    for slot, position, image_id, is_pie, owner in rows:
        out.setdefault(slot, []).append((image_id, is_pie, owner is None))
        positions.setdefault(slot, []).append(position)
    for slot, pos in positions.items():
        assert pos == list(range(1, len(pos) + 1)), f"reader {slot} positions are not 1..n"
    session.rollback()
    return out


def check_invariants(
    lists: dict[int, list[tuple[int, bool, bool]]],
    pies_per_reader: int,
    non_pies_per_reader: int,
    overlap: int,
) -> None:
    overlap_sets = set()
    unique_owner: Counter[int] = Counter()
    for items in lists.values():
        own = [(i, p) for i, p, ov in items if not ov]
        shared = frozenset(i for i, _, ov in items if ov)
        assert sum(p for _, p in own) == pies_per_reader
        assert sum(not p for _, p in own) == non_pies_per_reader
        assert len(shared) == overlap
        assert len({i for i, _, _ in items}) == len(items), "an image twice in one list"
        overlap_sets.add(shared)
        unique_owner.update(i for i, _ in own)
    assert len(overlap_sets) <= 1, "readers were given different overlap cases"
    assert all(n == 1 for n in unique_owner.values()), "an image went to two readers"
    if overlap_sets:
        assert not (next(iter(overlap_sets)) & set(unique_owner)), (
            "an overlap case is also someone's own"
        )
