"""Balanced, unique case allocation: pure functions, no I/O.

The PIE pool and the non-PIE pool are each put in one random order drawn from the study seed.
The first slice of each goes to the shared overlap cases; reader slot j then takes the j-th
slice after that. So every reader's set depends only on the seed and the slot: allocation is
reproducible, enrolling more readers never changes an earlier reader's set, and no image can
reach two readers. Each reader's cases are then shuffled with a generator seeded by
(study seed, slot).

Practice cases come from the other end: the last slice of each pool. Every reader reads them
first, and they count for nothing. Taking them from the tail leaves every reader slice where it
was, so a study with practice cases allocates its readers exactly as the same study without.

Rounding: PIEs per reader = round-half-up(cases_per_reader x pie_fraction), so 0.5 x 5 gives 3
(Python's round() would give 2).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class AllocationError(ValueError):
    pass


def round_half_up(x: float) -> int:
    # 1e-9 absorbs float error such as 0.35 * 40 = 14.000000000000002 or 0.15 * 10 = 1.4999999999999998
    return math.floor(x + 0.5 + 1e-9)


@dataclass(frozen=True)
class Design:
    cases_per_reader: int
    pie_fraction: float
    overlap_cases: int
    seed: int
    practice_cases: int = 0

    def __post_init__(self) -> None:
        if self.cases_per_reader < 1:
            raise AllocationError("cases_per_reader must be at least 1")
        if not 0.0 <= self.pie_fraction <= 1.0:
            raise AllocationError("pie_fraction must lie between 0 and 1")
        if self.overlap_cases < 0:
            raise AllocationError("overlap_cases cannot be negative")
        if self.practice_cases < 0:
            raise AllocationError("practice_cases cannot be negative")

    @property
    def pies_per_reader(self) -> int:
        return round_half_up(self.cases_per_reader * self.pie_fraction)

    @property
    def non_pies_per_reader(self) -> int:
        return self.cases_per_reader - self.pies_per_reader

    @property
    def overlap_pies(self) -> int:
        return round_half_up(self.overlap_cases * self.pie_fraction)

    @property
    def overlap_non_pies(self) -> int:
        return self.overlap_cases - self.overlap_pies

    @property
    def practice_pies(self) -> int:
        return round_half_up(self.practice_cases * self.pie_fraction)

    @property
    def practice_non_pies(self) -> int:
        return self.practice_cases - self.practice_pies

    @property
    def cases_seen_per_reader(self) -> int:
        """Study cases per reader (the practice cases are not counted)."""
        return self.cases_per_reader + self.overlap_cases

    def reserved(self) -> tuple[int, int]:
        """PIEs and non-PIEs held by the shared cases: the overlap and the practice cases."""
        return (
            self.overlap_pies + self.practice_pies,
            self.overlap_non_pies + self.practice_non_pies,
        )


def shuffled(items: Sequence[T], seed: int, label: str) -> list[T]:
    """items in a random order that depends only on (seed, label) and the items' given order."""
    out = list(items)
    # String seeds are hashed with SHA-512 by random.seed: stable across Python versions.
    random.Random(f"piestudy/{label}/{seed}").shuffle(out)
    return out


def max_readers(design: Design, n_pies: int, n_non_pies: int) -> int | None:
    """How many readers the pool can serve; None when unlimited (a design of 0 of both kinds)."""
    limits = []
    shared_pies, shared_non_pies = design.reserved()
    for available, overlap, per_reader in (
        (n_pies, shared_pies, design.pies_per_reader),
        (n_non_pies, shared_non_pies, design.non_pies_per_reader),
    ):
        if available < overlap:
            return 0
        if per_reader > 0:
            limits.append((available - overlap) // per_reader)
    return min(limits) if limits else None


def check_capacity(
    design: Design, n_pies: int, n_non_pies: int, enrolled: int, new_readers: int
) -> None:
    """Raise AllocationError naming the numbers when the pool cannot serve new_readers more."""
    shared_pies, shared_non_pies = design.reserved()
    for kind, available, overlap, per_reader in (
        ("PIEs", n_pies, shared_pies, design.pies_per_reader),
        ("non-PIEs", n_non_pies, shared_non_pies, design.non_pies_per_reader),
    ):
        if available < overlap:
            what = " + ".join(
                f"{n} {name} cases"
                for n, name in (
                    (design.overlap_cases, "overlap"),
                    (design.practice_cases, "practice"),
                )
                if n
            )
            raise AllocationError(f"{what} need {overlap} {kind}; the PIE set has {available}")
        unassigned = available - overlap - enrolled * per_reader
        need = new_readers * per_reader
        if need > unassigned:
            raise AllocationError(
                f"{new_readers} readers x {per_reader} {kind} need {need}; "
                f"the PIE set has {unassigned} unassigned"
            )


@dataclass(frozen=True)
class Slices:
    """Index ranges into the shuffled PIE and non-PIE pools."""

    pies: range
    non_pies: range


def overlap_slices(design: Design) -> Slices:
    return Slices(range(0, design.overlap_pies), range(0, design.overlap_non_pies))


def practice_slices(design: Design, n_pies: int, n_non_pies: int) -> Slices:
    """The last slice of each pool (they must hold more than the overlap: check_capacity)."""
    return Slices(
        range(n_pies - design.practice_pies, n_pies),
        range(n_non_pies - design.practice_non_pies, n_non_pies),
    )


def reader_slices(design: Design, slot: int) -> Slices:
    if slot < 0:
        raise AllocationError("reader slots start at 0")
    p0 = design.overlap_pies + slot * design.pies_per_reader
    n0 = design.overlap_non_pies + slot * design.non_pies_per_reader
    return Slices(
        range(p0, p0 + design.pies_per_reader), range(n0, n0 + design.non_pies_per_reader)
    )


def take(pool: Sequence[T], indices: range) -> list[T]:
    if indices.stop > len(pool):
        raise AllocationError(f"the pool has {len(pool)} items; slice {indices} reaches past it")
    return list(pool[indices.start : indices.stop])


def reader_order(cases: Sequence[T], seed: int, slot: int) -> list[T]:
    """The order in which reader `slot` sees their cases (give cases in a canonical order)."""
    return shuffled(cases, seed, f"order/{slot}")
