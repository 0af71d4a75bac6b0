from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from ml.models import create_model
from ml.prune import (
    prunable_weights,
    prune_count,
    prune_to,
    pruned_models,
    rank_weights,
    sparsity_report,
)
from ml.store import SPARSITIES


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    torch.manual_seed(0)
    return create_model("resnet18", num_classes=20).eval()


def torch_masks(model: nn.Module, k: float) -> dict[str, torch.Tensor]:
    m = copy.deepcopy(model)
    targets = [(mod, "weight") for mod in m.modules() if isinstance(mod, nn.Conv2d | nn.Linear)]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=k)
    masks = {}
    for name, mod in m.named_modules():
        if isinstance(mod, nn.Conv2d | nn.Linear):
            mask = mod.weight_mask  # added by torch's pruning
            assert isinstance(mask, torch.Tensor)
            masks[f"{name}.weight"] = mask.bool()
    return masks


def test_sparsity_grid() -> None:
    assert len(SPARSITIES) == 20 and SPARSITIES[0] == 0.0 and SPARSITIES[-1] == 0.95
    assert SPARSITIES[13] == 0.65


@pytest.mark.slow
def test_equals_torch_global_l1_at_every_sparsity(resnet: nn.Module) -> None:
    ranking = rank_weights(resnet)
    weights = dict(prunable_weights(resnet))
    flat = torch.cat([w.detach().reshape(-1).abs() for w in weights.values()])
    for k in SPARSITIES:
        ours = ranking.keep_masks(k)
        ref = torch_masks(resnet, k)
        ours_zeros = sum(int((~m).sum()) for m in ours.values())
        ref_zeros = sum(int((~m).sum()) for m in ref.values())
        assert ours_zeros == ref_zeros == prune_count(k, ranking.total), k
        if ours_zeros == 0:
            continue
        threshold = flat[ranking.order[ours_zeros - 1]]
        for name, mask in ours.items():
            differ = mask != ref[name]
            # positions agree, except among weights tied at the threshold
            assert bool((weights[name].detach().abs()[differ] == threshold).all()), (k, name)


def test_documented_tie_rule_and_count() -> None:
    layer = nn.Linear(4, 2, bias=True)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -1.0, 2.0, 1.0], [3.0, 1.0, -1.0, 4.0]]))
    model = nn.Sequential(layer)
    ranking = rank_weights(model)
    # |w| = 1 at flat 0, 1, 3, 5, 6: the earlier index goes first
    assert ranking.order[:5].tolist() == [0, 1, 3, 5, 6]
    masks = ranking.keep_masks(0.25)  # round(0.25 * 8) = 2
    assert masks["0.weight"].reshape(-1).tolist() == [
        False,
        False,
        True,
        True,
        True,
        True,
        True,
        True,
    ]
    assert masks["0.weight"].shape == (2, 4)
    ref = torch_masks(model, 0.25)
    assert int((~ref["0.weight"]).sum()) == 2


def test_masks_nested_and_models_pruned_incrementally(resnet: nn.Module) -> None:
    ranking = rank_weights(resnet)
    previous = None
    originals = {n: p.detach().clone() for n, p in resnet.named_parameters()}
    buffers = {n: b.clone() for n, b in resnet.named_buffers()}
    prunable = {n for n, _ in prunable_weights(resnet)}
    for k, model in pruned_models(resnet, ranking):
        masks = ranking.keep_masks(k)
        if previous is not None:
            assert all(bool((masks[n] <= previous[n]).all()) for n in masks), "masks are not nested"
        params = dict(model.named_parameters())
        for name, original in originals.items():
            if name in prunable:
                assert torch.equal(params[name].detach(), original * masks[name])
            else:  # biases and BatchNorm are never pruned
                assert torch.equal(params[name].detach(), original)
        for name, buf in model.named_buffers():
            assert torch.equal(buf, buffers[name])
        report = sparsity_report(model)
        assert sum(r.zeros for r in report) == prune_count(k, ranking.total)
        previous = masks
    # the model passed in is left untouched
    assert all(torch.equal(p.detach(), originals[n]) for n, p in resnet.named_parameters())


def test_min_keep_prevents_layer_collapse() -> None:
    torch.manual_seed(1)
    tiny = nn.Linear(100, 100)
    big = nn.Linear(100, 1000)
    with torch.no_grad():
        tiny.weight.mul_(1e-3)  # a layer that plain magnitude pruning wipes out first
    model = nn.Sequential(tiny, nn.ReLU(), big)
    total = 100 * 100 + 100 * 1000
    plain = rank_weights(model).keep_masks(0.5)
    assert int(plain["0.weight"].sum()) == 0  # collapsed
    ranking = rank_weights(model, min_keep=0.0005)
    m = math.ceil(0.0005 * total)
    for k in (0.5, 0.9, 0.95):
        masks = ranking.keep_masks(k)
        assert int(masks["0.weight"].sum()) >= m
        assert sum(int((~v).sum()) for v in masks.values()) == round(k * total)
    # the kept weights of the small layer are its largest
    kept = tiny.weight.detach().abs()[ranking.keep_masks(0.95)["0.weight"]]
    assert kept.min() >= tiny.weight.detach().abs().flatten().sort().values[-m]


def test_min_keep_on_resnet_at_95(resnet: nn.Module) -> None:
    ranking = rank_weights(resnet, min_keep=0.0005)
    pruned = prune_to(resnet, ranking, 0.95)
    report = sparsity_report(pruned)
    assert all(r.zeros < r.size for r in report), "a layer collapsed"
    m = math.ceil(0.0005 * ranking.total)
    assert all(r.size - r.zeros >= min(m, r.size) for r in report)
    assert sum(r.zeros for r in report) == round(0.95 * ranking.total)


def test_small_layers_stay_dense_under_min_keep() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2000))
    ranking = rank_weights(model, min_keep=0.01)  # m = 41 > 4 weights of the first layer
    assert bool(ranking.keep_masks(0.9)["0.weight"].all())


def test_random_baseline(resnet: nn.Module) -> None:
    a = rank_weights(resnet, method="random", seed=3)
    b = rank_weights(resnet, method="random", seed=3)
    c = rank_weights(resnet, method="random", seed=4)
    assert torch.equal(a.order, b.order) and not torch.equal(a.order, c.order)
    l1 = rank_weights(resnet)
    masks = a.keep_masks(0.5)
    assert sum(int((~v).sum()) for v in masks.values()) == round(0.5 * a.total)
    assert any(not torch.equal(masks[n], l1.keep_masks(0.5)[n]) for n in masks)


def test_bad_arguments() -> None:
    model = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(ValueError, match="sparsity"):
        rank_weights(model).keep_masks(1.0)
    with pytest.raises(ValueError, match="no Conv2d or Linear"):
        rank_weights(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="only"):
        rank_weights(nn.Sequential(nn.Linear(10, 10)), min_keep=0.5).keep_masks(0.9)
    with pytest.raises(ValueError, match="unknown model"):
        create_model("vgg", 3)
