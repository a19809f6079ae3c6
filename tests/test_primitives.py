"""Primitives one at a time: the static shape, params and MACs rules against what the torch module does,
and activations on inputs large enough to tell them apart."""

from __future__ import annotations

import pytest
import torch

import archspec

CONVS = [  # (input C, H, W), conv args
    ((4, 17, 19), {"out": 6, "kernel": 3, "dilation": 2}),
    ((4, 17, 19), {"out": 6, "kernel": 3, "dilation": 2, "padding": 2}),
    ((4, 17, 19), {"out": 6, "kernel": 3, "dilation": 3, "stride": 2, "padding": 1}),
    ((4, 16, 16), {"out": 8, "kernel": [3, 5], "dilation": [2, 3], "padding": [1, 2], "groups": 2}),
    ((6, 20, 11), {"out": 6, "kernel": 3, "dilation": [4, 1], "stride": [1, 2], "groups": 6, "bias": False}),
    ((3, 9, 9), {"out": 5, "kernel": 3, "stride": 2, "padding": 1}),
    ((3, 9, 9), {"out": 5, "kernel": 1}),
]


def spec_text(chw, args: dict, tail: str = "") -> str:
    flow = ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in args.items())
    return (f"archspec: 1\nname: one_conv\ninput: [{', '.join(map(str, chw))}]\nnodes:\n"
            f"  - {{name: conv, block: conv2d, {flow}}}\n{tail}")


@pytest.mark.parametrize("chw, args", CONVS, ids=[str(i) for i in range(len(CONVS))])
def test_conv2d_static_rules_equal_the_built_module(chw, args, tmp_path):
    path = tmp_path / "conv.yaml"
    path.write_text(spec_text(chw, args))
    graph = archspec.compile(path)
    model = archspec.build(graph).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *chw))
    assert graph.output_shapes()[0] == tuple(out.shape[1:])
    assert graph.total_params == sum(p.numel() for p in model.parameters())
    kernel = args["kernel"] if isinstance(args["kernel"], list) else [args["kernel"]] * 2
    per_output = chw[0] // args.get("groups", 1) * kernel[0] * kernel[1]
    assert graph.total_macs() == out[0].numel() * per_output
    conv = model.conv
    dilation = args.get("dilation", 1)
    assert conv.dilation == (tuple(dilation) if isinstance(dilation, list) else (dilation, dilation))


def test_dilated_conv_feeds_a_linear_head(tmp_path):
    """The static shape of a dilated conv sizes the layers after it: a wrong rule crashes the forward."""
    path = tmp_path / "head.yaml"
    path.write_text(spec_text((3, 15, 15), {"out": 4, "kernel": 3, "dilation": 3},
                              "  - {name: flatten, block: flatten}\n  - {name: fc, block: linear, out: 2}\n"))
    graph = archspec.compile(path)
    assert graph.call("conv").out_shape == (4, 9, 9)  # 15 - 3 * (3 - 1)
    model = archspec.build(graph).eval()
    assert model.fc.in_features == 4 * 9 * 9
    with torch.no_grad():
        assert model(torch.randn(2, 3, 15, 15)).shape == (2, 2)


def test_dilation_that_collapses_the_input_is_a_located_error(tmp_path):
    path = tmp_path / "collapse.yaml"
    path.write_text(spec_text((3, 8, 8), {"out": 4, "kernel": 3, "dilation": 4}))  # needs 9 rows
    with pytest.raises(archspec.ArchspecError) as info:
        archspec.compile(path)
    assert info.value.location.line == 5 and "collapses" in info.value.message


# ---- activations ------------------------------------------------------------------------------
X = torch.linspace(-12, 12, 97).reshape(1, 1, 97)  # well beyond 6 on both sides
EXPECTED = {
    "relu": torch.relu, "relu6": lambda x: x.clamp(0, 6), "sigmoid": torch.sigmoid,
    "swish": lambda x: x * torch.sigmoid(x), "hardswish": lambda x: x * (x + 3).clamp(0, 6) / 6,
    "hardsigmoid": lambda x: (x + 3).clamp(0, 6) / 6, "tanh": torch.tanh,
    "gelu": lambda x: 0.5 * x * (1 + torch.erf(x / 2 ** 0.5)),
}


def run_activation(tmp_path, block: str, extra: str = "") -> torch.Tensor:
    path = tmp_path / "act.yaml"
    path.write_text(f"archspec: 1\nname: act\ninput: [1, 97]\nnodes:\n  - {{name: a, block: {block}{extra}}}\n")
    model = archspec.load(path).eval()
    with torch.no_grad():
        return model(X.clone())


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_activation_values_on_a_wide_range(kind, tmp_path):
    assert torch.allclose(run_activation(tmp_path, kind), EXPECTED[kind](X), atol=1e-6)
    assert torch.allclose(run_activation(tmp_path, "act", f", kind: {kind}"), EXPECTED[kind](X), atol=1e-6)


def test_activations_are_told_apart():
    """The reference values above differ where it matters: a test on them can tell the kinds apart."""
    assert (EXPECTED["relu"](X) - EXPECTED["relu6"](X)).abs().max() == 6
    assert (EXPECTED["swish"](X) - EXPECTED["hardswish"](X)).abs().max() > 0.1


def test_every_activation_kind_is_covered():
    from archspec.ops.activations import KINDS

    assert set(KINDS) == set(EXPECTED)
