"""Direct comparison with the reference libraries, where the `oracles` extra installs them."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT
from oracles import ORACLES, load_by_order, torchreid_osnet

import archspec


def same_outputs(ours: torch.nn.Module, ref: torch.nn.Module, x: torch.Tensor, train: bool = False) -> None:
    ours.train(train)
    ref.train(train)
    with torch.no_grad():
        torch.manual_seed(0)
        a = ours(x)
        torch.manual_seed(0)
        b = ref(x)
    for p, q in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,), strict=True):
        assert p.shape == q.shape
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-5 * q.abs().max().item())


@pytest.mark.parametrize("spec", sorted(ORACLES))
def test_against_reference_library(spec):
    factory, match = ORACLES[spec]
    torch.manual_seed(0)
    ref = factory()
    if ref is None:
        pytest.skip(f"the reference library for {spec} is not installed (pip install '.[oracles]')")
    graph = archspec.compile(ROOT / "specs" / f"{spec}.yaml")
    ours = archspec.build(graph)
    if match == "names":
        assert [(k, v.shape) for k, v in ours.state_dict().items()] == \
            [(k, v.shape) for k, v in ref.state_dict().items()]
        ours.load_state_dict(ref.state_dict(), strict=True)
    else:
        load_by_order(ours, ref)
    assert graph.total_params == sum(p.numel() for p in ref.parameters())
    same_outputs(ours, ref, torch.randn(2, *graph.input_shape))


@pytest.mark.parametrize("loss", ["softmax", "triplet"])
def test_osnet_train_mode_against_torchreid(loss):
    ref = torchreid_osnet("osnet_x1_0", num_classes=751, loss=loss)
    if ref is None:
        pytest.skip("torchreid is not installed (pip install '.[oracles]')")
    ours = archspec.load(ROOT / "specs/osnet_x1_0.yaml", num_classes=751, loss=loss)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 256, 128)
    same_outputs(ours, ref, x)
    # train mode: BatchNorm uses batch statistics; logits (and the feature for triplet) must agree
    same_outputs(ours, ref, x, train=True)
