"""archspec.optimize keeps the outputs of every shipped spec; torch.compile works on every built module."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT, SPECS
from fill import perturb_norms

import archspec


def built(spec):
    return perturb_norms(archspec.load(spec, seed=0).eval())


def relative_error(a, b) -> float:
    pairs = zip(a, b) if isinstance(a, tuple) else [(a, b)]
    return max(((p - q).abs().max() / p.abs().max()).item() for p, q in pairs)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_optimized_outputs_equal(spec):
    model = built(spec)
    fast = archspec.optimize(model, mdconv="always", channels_last="always")
    x = torch.randn(2, *model._plan.input_shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for scale in (0.1, 1.0, 10.0):
            assert relative_error(model(scale * x), fast(scale * x)) < 1e-5, scale
    ops = {step.op for step in fast._plan.steps["eval"]}
    assert not ops & {"batchnorm", "dropout", "identity", "grouped_conv2d", "mixed_conv2d"} or \
        spec.stem.startswith(("se_ibn", "osnet_ibn"))  # IBN's BatchNorm reads a channel slice, not a conv


def test_norm_perturbation_reaches_every_norm_parameter():
    model = built(ROOT / "specs/mobilenet_v2.yaml")
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 52
    for norm in norms:
        assert norm.bias.abs().min() > 0 and (norm.weight - 1).abs().max() > 0.1
        assert (norm.running_var - 1).abs().max() > 0.1 and norm.running_mean.abs().max() > 0


def test_folding_keeps_beta_on_a_tiny_conv_bn(tmp_path):
    """One conv, one BN with β only: the folded conv must carry β in its bias."""
    path = tmp_path / "cb.yaml"
    path.write_text("archspec: 1\nname: cb\ninput: [2, 5, 5]\nnodes:\n"
                    "  - {name: conv, block: conv2d, out: 3, kernel: 3, padding: 1, bias: false}\n"
                    "  - {name: bn, block: batchnorm}\n")
    model = archspec.load(path, seed=0).eval()
    with torch.no_grad():
        model.bn.bias.copy_(torch.tensor([1.0, -2.0, 3.0]))
    fast = archspec.optimize(model)
    assert not any(step.op == "batchnorm" for step in fast._plan.steps["eval"])
    x = torch.randn(1, 2, 5, 5)
    with torch.no_grad():
        assert torch.allclose(fast(x), model(x), atol=1e-5)
        assert torch.allclose(fast(torch.zeros_like(x)).mean((0, 2, 3)), torch.tensor([1.0, -2.0, 3.0]))


def test_optimize_leaves_the_original_alone():
    model = built(ROOT / "specs/mixnet_s.yaml")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    archspec.optimize(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert any(step.op == "batchnorm" for step in model._plan.steps["eval"])


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
    x = torch.randn(1, *model._plan.input_shape)
    with torch.no_grad():
        expected = model(x)
        got = compiled(x)
    assert relative_error(expected, got) < 1e-5
