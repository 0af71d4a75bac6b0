"""Global unstructured pruning at all sparsities from one ranking (SPEC §2.1).

Prunable weights: the ``weight`` of every Conv2d and Linear (never biases, never BatchNorm),
taken together in module order as one flat vector of N weights.

- ``l1``: weights ordered by |w| ascending. Tie rule: a stable sort, so among equal |w| the
  weight earlier in the flat vector (earlier module, then row-major position) is pruned first.
  At sparsity k the first round(k x N) weights of the order are zero (Python's round, as
  torch.nn.utils.prune computes the count), so the result equals
  ``prune.global_unstructured(..., L1Unstructured, amount=k)`` in count and, apart from ties at
  the threshold, in position; and the masks of the 20 sparsities are nested by construction.
- ``min_keep`` (Global MP's minimum threshold, Gupta et al.): every layer keeps at least
  m = min_keep x N weights (its m largest |w|); a layer of at most m weights stays dense. The rest
  are ranked globally, so the total sparsity is still exactly k.
- ``random``: the baseline, a seeded random order.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from ml.store import SPARSITIES

PruningMethod = Literal["l1", "random"]


def prunable_weights(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [
        (f"{name}.weight", module.weight)
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
    ]


def prune_count(k: float, total: int) -> int:
    """How many weights are zero at sparsity k: round(k x N), as torch.nn.utils.prune counts."""
    if not 0.0 <= k < 1.0:
        raise ValueError(f"sparsity must lie in [0, 1), got {k}")
    return round(k * total)


@dataclass(frozen=True)
class WeightRanking:
    """The order in which one model's prunable weights are removed.

    order[i] is the flat index of the i-th weight to prune; rank is its inverse (the step at which
    each weight goes). Weights in `protected` places (order[prunable_count:]) are never pruned.
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    order: torch.Tensor  # int64 [N]
    prunable_count: int
    method: PruningMethod
    min_keep: float

    @functools.cached_property
    def rank(self) -> torch.Tensor:
        """int64 [N]: where each weight stands in `order` (made when first asked for: pruning
        itself needs only the order)."""
        rank = np.empty(self.order.numel(), dtype=np.int64)
        rank[self.order.numpy()] = np.arange(self.order.numel(), dtype=np.int64)
        return torch.from_numpy(rank)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(math.prod(s) for s in self.shapes)

    @property
    def total(self) -> int:
        return sum(self.sizes)

    def count(self, k: float) -> int:
        n = prune_count(k, self.total)
        if n > self.prunable_count:
            raise ValueError(
                f"sparsity {k} prunes {n} weights but only {self.prunable_count} of {self.total} may "
                f"go with min_keep={self.min_keep}"
            )
        return n

    def keep_masks(self, k: float) -> dict[str, torch.Tensor]:
        """Boolean keep-masks per layer, shaped like the weights (True = survives) at sparsity k."""
        n = self.count(k)
        masks = {}
        offset = 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            size = math.prod(shape)
            masks[name] = (self.rank[offset : offset + size] >= n).reshape(shape)
            offset += size
        return masks


def stable_order(score: torch.Tensor) -> torch.Tensor:
    """Indices that sort non-negative float32 scores ascending, ties by index (a stable sort).

    For non-negative IEEE floats the bit patterns sort like the values, so (bits << 32 | index)
    is a unique uint64 key whose plain sort is the stable order; numpy sorts it with SIMD
    instructions, several times faster than a stable comparison sort.
    """
    values = score.detach().cpu().float().numpy()
    if values.size >= 2**32:
        raise ValueError("too many weights for a 32-bit index")
    if values.size and float(values.min()) < 0:
        raise ValueError("scores must be non-negative")
    # In place where possible: each fresh array of this size is ~200 MB of page faults.
    keys = values.view(np.uint32).astype(np.uint64)
    keys <<= np.uint64(32)
    keys |= np.arange(values.size, dtype=np.uint64)
    keys.sort()
    keys &= np.uint64(0xFFFFFFFF)
    return torch.from_numpy(keys.view(np.int64))  # indices < 2**32: the same bits as int64


def rank_weights(
    model: nn.Module, *, method: PruningMethod = "l1", min_keep: float = 0.0, seed: int = 0
) -> WeightRanking:
    params = prunable_weights(model)
    if not params:
        raise ValueError("the model has no Conv2d or Linear weights to prune")
    names = tuple(n for n, _ in params)
    shapes = tuple(tuple(p.shape) for _, p in params)
    sizes = tuple(p.numel() for _, p in params)
    total = sum(sizes)
    with torch.no_grad():
        flat = torch.cat([p.detach().reshape(-1).abs().float().cpu() for _, p in params])
    if method == "l1":
        score = flat
    elif method == "random":
        generator = torch.Generator().manual_seed(seed)
        score = torch.rand(total, generator=generator)
    else:
        raise ValueError(f"unknown pruning method {method!r}; use l1 or random")

    if min_keep <= 0:
        order = stable_order(score)
        prunable_count = total
    else:
        protected = torch.zeros(total, dtype=torch.bool)
        m = math.ceil(min_keep * total)
        offset = 0
        for size in sizes:
            if size <= m:
                protected[offset : offset + size] = True
            else:
                # the layer's m largest |w| stay (ties: the later index stays, as in the global order)
                local = stable_order(flat[offset : offset + size])
                protected[offset + local[size - m :]] = True
            offset += size
        free = torch.nonzero(~protected).squeeze(1)
        kept = torch.nonzero(protected).squeeze(1)
        order = torch.cat([free[stable_order(score[free])], kept[stable_order(score[kept])]])
        prunable_count = int(free.numel())
    return WeightRanking(names, shapes, order, prunable_count, method, min_keep)


def pruned_models(
    model: nn.Module, ranking: WeightRanking, sparsities: Sequence[float] = SPARSITIES
) -> Iterator[tuple[float, nn.Module]]:
    """(k, model pruned at k) for increasing k, pruning incrementally on one copy of the model.

    The masks are nested, so going from k to the next sparsity only zeroes the weights ranked
    between the two counts. The yielded model is the same object each time: use it before the
    next step.
    """
    if list(sparsities) != sorted(sparsities):
        raise ValueError("sparsities must be increasing")
    pruned = copy.deepcopy(model)
    # Make every prunable weight a view into one flat buffer: a pruning step is then one scatter.
    params = prunable_weights(pruned)
    if tuple(n for n, _ in params) != ranking.names:
        raise ValueError("the ranking was made for a different model")
    with torch.no_grad():
        flat = torch.cat([p.detach().reshape(-1) for _, p in params])
        offset = 0
        for _, p in params:
            p.data = flat[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
    done = 0
    with torch.no_grad():
        for k in sparsities:
            n = ranking.count(k)
            if n > done:
                flat[ranking.order[done:n]] = 0.0
            done = n
            yield k, pruned


def prune_to(model: nn.Module, ranking: WeightRanking, k: float) -> nn.Module:
    """A pruned copy of the model at one sparsity."""
    for _, pruned in pruned_models(model, ranking, [k]):
        return pruned
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class LayerSparsity:
    name: str
    size: int
    zeros: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.size


def sparsity_report(model: nn.Module) -> list[LayerSparsity]:
    """Zeros per prunable layer of a (pruned) model."""
    return [
        LayerSparsity(name, p.numel(), int((p.detach() == 0).sum()))
        for name, p in prunable_weights(model)
    ]
