"""Direct comparison with the reference libraries, where the `oracles` extra installs them."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import ROOT
from fill import exercise
from oracles import ORACLES, REBUILT, load_by_order, torchreid_osnet, torchvision_model

import archspec

SCALES = (0.1, 1.0, 10.0)  # 10: activations well past 6, so ReLU and ReLU6 (and swish and hardswish) differ


def same_outputs(ours: torch.nn.Module, ref: torch.nn.Module, x: torch.Tensor, train: bool = False,
                 scales: tuple = SCALES) -> None:
    """Every output value agrees, at every input scale."""
    ours.train(train)
    ref.train(train)
    for scale in scales:
        with torch.no_grad():
            torch.manual_seed(0)
            a = ours(scale * x)
            torch.manual_seed(0)
            b = ref(scale * x)
        for p, q in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,), strict=True):
            assert p.shape == q.shape
            tol = 1e-5 * q.abs().max().item()
            assert torch.allclose(p, q, rtol=1e-4, atol=tol), \
                f"scale {scale}: max error {(p - q).abs().max().item():.3g}, tolerance {tol:.3g}"


@pytest.mark.parametrize("spec", sorted({**ORACLES, **REBUILT}))
def test_against_reference_library(spec):
    factory, match = {**ORACLES, **REBUILT}[spec]
    torch.manual_seed(0)
    ref = factory()
    if ref is None:
        pytest.skip(f"the reference library for {spec} is not installed (pip install '.[oracles]')")
    exercise(ref)  # default init leaves γ = 1, β = 0, mean = 0, var = 1 and shrinks activations: unchecked
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
    exercise(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 256, 128)
    same_outputs(ours, ref, x)
    # train mode: BatchNorm uses batch statistics; logits (and the feature for triplet) must agree
    same_outputs(ours, ref, x, train=True)


def relu6_to_relu(module: torch.nn.Module) -> torch.nn.Module:
    for name, child in module.named_children():
        if isinstance(child, torch.nn.ReLU6):
            setattr(module, name, torch.nn.ReLU())
        else:
            relu6_to_relu(child)
    return module


@pytest.mark.parametrize("onnx_compatible", [False, True])
def test_mobilenet_v2_activation_against_torchvision(onnx_compatible):
    """ReLU6 by default, ReLU with onnx_compatible: checked on inputs where the two differ."""
    ref = torchvision_model("mobilenet_v2")
    if ref is None:
        pytest.skip("torchvision is not installed")
    exercise(ref).eval()
    ours = archspec.load(ROOT / "specs/mobilenet_v2.yaml", onnx_compatible=onnx_compatible).eval()
    load_by_order(ours, ref)
    x = 10 * torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    relu = relu6_to_relu(copy.deepcopy(ref))
    with torch.no_grad():
        expected, other = (relu(x), ref(x)) if onnx_compatible else (ref(x), relu(x))
        got = ours(x)
    scale = expected.abs().max().item()
    assert (expected - other).abs().max().item() > 0.01 * scale  # this input tells ReLU from ReLU6
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5 * scale)
    kinds = {type(m).__name__ for m in ours.modules()} & {"ReLU", "ReLU6"}
    assert kinds == ({"ReLU"} if onnx_compatible else {"ReLU6"})
