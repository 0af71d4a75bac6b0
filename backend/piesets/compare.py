"""PIE sets of one dataset side by side (ml.compare): the overlap of their PIEs, the correlation
of their scores, and, where a PIE set came from a run whose prediction store is still on the
server, its forgettability curves overlaid with the others'."""

from __future__ import annotations

import base64
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.db import MAX_ID
from backend.errors import InvalidInputError
from backend.piesets import repository
from backend.piesets.service import get_pie_set
from ml.analysis.figures import overlaid_curves
from ml.compare import Item, compare, store_curves
from ml.store import PredictionStore, StoreError

MAX_COMPARED = 6
SETTINGS = ("k_star", "measure", "percentile", "method", "min_keep", "model", "seeds")


def _store(provenance: dict[str, Any], settings: Settings) -> PredictionStore | None:
    """The run's prediction store, where it is still there and this server may read it."""
    path = provenance.get("store")
    if not path:
        return None
    where = Path(path).resolve()
    readable = settings.may_read(where) or where.is_relative_to(settings.resolved_media_dir)
    if not readable or not (where / "manifest.json").is_file():
        return None
    try:
        return PredictionStore.open(where)
    except StoreError:
        return None


def compare_pie_sets(session: Session, ids: Sequence[int], settings: Settings) -> dict[str, Any]:
    if any(not 1 <= i <= MAX_ID for i in ids):
        raise InvalidInputError(f"id: PIE set ids are whole numbers from 1 to {MAX_ID}")
    if not 2 <= len(set(ids)) <= MAX_COMPARED:
        raise InvalidInputError(
            f"choose between 2 and {MAX_COMPARED} different PIE sets to compare"
        )
    pie_sets = [get_pie_set(session, i) for i in dict.fromkeys(ids)]
    if len({p.dataset_id for p in pie_sets}) > 1:
        raise InvalidInputError("these PIE sets are of different datasets: compare PIE sets of one")
    items, described = [], []
    for ps in pie_sets:
        _, rows = repository.page_members(
            session, ps.id, offset=0, limit=ps.member_count, is_pie=None
        )
        store = _store(ps.provenance, settings)
        label = f"{ps.name} v{ps.version}"
        scores = np.array([math.nan if r.member.score is None else r.member.score for r in rows])
        flags = np.array([r.member.is_pie for r in rows], dtype=bool)
        curves = store_curves(store) if store is not None else {}
        items.append(Item(label, tuple(r.external_id for r in rows), scores, flags, **curves))
        described.append({
            "id": ps.id, "label": label, "curves": store is not None,
            "settings": {k: ps.parameters[k] for k in SETTINGS if k in ps.parameters},
        })  # fmt: skip
    result = compare(items)
    result["pie_sets"] = described
    return result


def curves_png(result: dict[str, Any]) -> str | None:
    """The overlaid curves as a PNG data URI (None where no PIE set has a store)."""
    if not result["curves"]:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        png = overlaid_curves(result["curves"], Path(tmp))[0]  # the figure alone
        return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
