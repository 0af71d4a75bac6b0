"""The PIE set file: CSV ``image,is_pie,score[,rank]``, one row per test image.

``score`` may be empty (or ``nan``) for an image whose PIE score is undefined (a constant
prediction row). ``rank`` is 1 for the lowest score; when the file has no rank column it is
computed: ascending score, ties broken by image id, undefined scores unranked.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ml.data.labels import LabelProblem

_TRUE = {"1", "true", "yes", "pie"}
_FALSE = {"0", "false", "no", "non-pie"}


@dataclass(frozen=True)
class PieRow:
    image: str
    is_pie: bool
    score: float | None
    rank: int | None
    line: int


@dataclass(frozen=True)
class PieSetFile:
    rows: tuple[PieRow, ...]
    problems: tuple[LabelProblem, ...]


def parse_pieset_csv(text: str, source: str = "pieset.csv") -> PieSetFile:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in ("image", "is_pie", "score") if c not in header]
    if missing:
        problem = LabelProblem(
            source, 1, "header",
            f"missing column(s) {', '.join(missing)}; a PIE set file has image,is_pie,score[,rank]",
        )  # fmt: skip
        return PieSetFile((), (problem,))
    has_rank = "rank" in header
    rows: list[PieRow] = []
    problems: list[LabelProblem] = []
    seen: dict[str, int] = {}
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        image = row.get("image", "")
        if not image:
            problems.append(LabelProblem(source, line, "image", "empty image id"))
            continue
        if image in seen:
            problems.append(
                LabelProblem(
                    source,
                    line,
                    "image",
                    f"duplicate image {image!r} (first at line {seen[image]})",
                )
            )
            continue
        seen[image] = line
        flag = row.get("is_pie", "").lower()
        if flag not in _TRUE | _FALSE:
            problems.append(
                LabelProblem(source, line, "is_pie", f"must be 0 or 1, got {row.get('is_pie')!r}")
            )
            continue
        score: float | None
        text_score = row.get("score", "")
        if text_score == "" or text_score.lower() == "nan":
            score = None
        else:
            try:
                score = float(text_score)
            except ValueError:
                problems.append(
                    LabelProblem(source, line, "score", f"not a number: {text_score!r}")
                )
                continue
            if not math.isfinite(score) or not -1.0 <= score <= 1.0:
                problems.append(
                    LabelProblem(
                        source,
                        line,
                        "score",
                        f"a Spearman correlation lies in [-1, 1], got {score}",
                    )
                )
                continue
        rank: int | None = None
        if has_rank and row.get("rank"):
            try:
                rank = int(row["rank"])
            except ValueError:
                problems.append(
                    LabelProblem(source, line, "rank", f"not an integer: {row['rank']!r}")
                )
                continue
            if rank < 1:
                problems.append(LabelProblem(source, line, "rank", f"ranks start at 1, got {rank}"))
                continue
        rows.append(PieRow(image, flag in _TRUE, score, rank, line))
    if not has_rank:
        rows = with_computed_ranks(rows)
    return PieSetFile(tuple(rows), tuple(problems))


def score_ranks(images: Sequence[str], scores: Sequence[float | None]) -> list[int | None]:
    """The rank of each image: 1 for the lowest score, ties broken by image id (so the order
    is reproducible), None where the score is undefined (None or NaN). The one rank rule, for
    the PIE sets the engine writes and for files imported without ranks."""
    defined = [i for i, s in enumerate(scores) if s is not None and not math.isnan(s)]
    order = sorted(defined, key=lambda i: (scores[i], images[i]))
    ranks: list[int | None] = [None] * len(images)
    for rank, i in enumerate(order, start=1):
        ranks[i] = rank
    return ranks


def with_computed_ranks(rows: list[PieRow]) -> list[PieRow]:
    ranks = score_ranks([r.image for r in rows], [r.score for r in rows])
    return [PieRow(r.image, r.is_pie, r.score, k, r.line) for r, k in zip(rows, ranks, strict=True)]
