"""archspec.optimize keeps the outputs of every shipped spec; torch.compile works on every built module."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT, SPECS

import archspec


def built(spec):
    model = archspec.load(spec, seed=0).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding is really tested
        for key, tensor in model.state_dict().items():
            if key.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif key.endswith("running_mean"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * 0.4 - 0.2)
    return model


def relative_error(a, b) -> float:
    pairs = zip(a, b) if isinstance(a, tuple) else [(a, b)]
    return max(((p - q).abs().max() / p.abs().max()).item() for p, q in pairs)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_optimized_outputs_equal(spec):
    model = built(spec)
    fast = archspec.optimize(model, mdconv="always", channels_last="always")
    x = torch.randn(2, *model._plan["input_shape"])
    with torch.no_grad():
        assert relative_error(model(x), fast(x)) < 1e-5
    ops = {step["op"] for step in fast._plan["eval"]}
    assert not ops & {"batchnorm", "dropout", "identity", "grouped_conv2d", "mixed_conv2d"} or \
        spec.stem.startswith(("se_ibn", "osnet_ibn"))  # IBN's BatchNorm reads a channel slice, not a conv


def test_optimize_leaves_the_original_alone():
    model = built(ROOT / "specs/mixnet_s.yaml")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    archspec.optimize(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert any(step["op"] == "batchnorm" for step in model._plan["eval"])


def test_optimized_module_pickles_and_traces(tmp_path):
    import pickle

    fast = archspec.optimize(built(ROOT / "specs/mobilenet_v2.yaml"), channels_last="always")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(pickle.loads(pickle.dumps(fast))(x), fast(x))
        assert torch.allclose(torch.jit.trace(fast, x)(x), fast(x), atol=1e-5)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_torch_compile_aot_eager(spec):
    torch._dynamo.reset()
    model = archspec.load(spec, seed=0).eval()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    x = torch.randn(1, *model._plan["input_shape"])
    with torch.no_grad():
        expected = model(x)
        got = compiled(x)
    assert relative_error(expected, got) < 1e-5
