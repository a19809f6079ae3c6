"""Direct comparison with the reference libraries, where the `oracles` extra installs them."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT
from oracles import load_by_order, torchreid_osnet, torchvision_model

import archspec


def same_outputs(ours: torch.nn.Module, ref: torch.nn.Module, x: torch.Tensor, train: bool = False) -> None:
    ours.train(train)
    ref.train(train)
    with torch.no_grad():
        torch.manual_seed(0)
        a = ours(x)
        torch.manual_seed(0)
        b = ref(x)
    for p, q in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-5 * q.abs().max().item())


@pytest.mark.parametrize("loss", ["softmax", "triplet"])
def test_osnet_against_torchreid(loss):
    ref = torchreid_osnet("osnet_x1_0", num_classes=751, loss=loss)
    if ref is None:
        pytest.skip("torchreid is not installed (pip install '.[oracles]')")
    ours = archspec.load(ROOT / "specs/osnet_x1_0.yaml", num_classes=751, loss=loss)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [(k, v.shape) for k, v in ref.state_dict().items()]
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 256, 128)
    same_outputs(ours, ref, x)
    # train mode runs BatchNorm in batch-statistics mode; the logits (and feature) must agree too
    same_outputs(ours, ref, x, train=True)


def test_resnet50_against_torchvision():
    ref = torchvision_model("resnet50")
    if ref is None:
        pytest.skip("torchvision is not installed (see README: oracles)")
    ours = archspec.load(ROOT / "specs/resnet50.yaml")
    ours.load_state_dict(ref.state_dict(), strict=True)
    same_outputs(ours, ref, torch.randn(2, 3, 224, 224))


def test_mobilenet_v2_against_torchvision_by_parameter_order():
    ref = torchvision_model("mobilenet_v2")
    if ref is None:
        pytest.skip("torchvision is not installed (see README: oracles)")
    ours = archspec.load(ROOT / "specs/mobilenet_v2.yaml")
    load_by_order(ours, ref)
    same_outputs(ours, ref, torch.randn(2, 3, 224, 224))

