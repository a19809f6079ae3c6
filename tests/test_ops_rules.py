"""Every primitive's static rules against the module torch runs (issue 18, mutation testing of archspec/ops).

For each registered primitive and several argument sets: the inferred shape equals the output of a real
forward, the counted parameters equal `sum(p.numel())` of the built module, and the counted MACs equal a
count taken from the built torch modules (every conv and linear the forward runs). The errors, the built
modules' settings and the functional ops' values are checked exactly.
"""

from __future__ import annotations

import itertools
import math
import operator

import pytest
import torch
from torch import fx, nn

from archspec.ops import REGISTRY
from archspec.ops.activations import KINDS

CASES: dict[str, list[tuple[dict, list[tuple[int, ...]]]]] = {
    "conv2d": [
        ({"out": 6, "kernel": [3, 5], "stride": [2, 1], "padding": [1, 2], "dilation": [1, 2], "groups": 2,
          "bias": False}, [(4, 11, 13)]),
        ({"out": 3, "kernel": 1}, [(5, 6, 7)]),
        ({"out": 9, "kernel": [1, 3], "stride": [1, 3], "padding": [0, 1], "groups": 3}, [(6, 7, 10)]),
    ],
    "grouped_conv2d": [
        ({"out": 7, "kernel": [3, 3], "stride": 2, "padding": 1}, [(5, 9, 10)]),
        ({"out": 4, "kernel": [5], "padding": 2}, [(3, 8, 6)]),
        ({"out": 11, "kernel": [1, 1, 1, 1]}, [(9, 3, 4)]),
    ],
    "mixed_conv2d": [
        ({"kernel": [3, 5]}, [(7, 6, 8)]),
        ({"kernel": [3]}, [(4, 5, 7)]),
        ({"kernel": [1, 3, 5, 7], "stride": 3}, [(9, 10, 11)]),
    ],
    "linear": [({"out": 3, "bias": False}, [(6,)]), ({"out": 1}, [(2,)])],
    "maxpool2d": [
        ({"kernel": [2, 3], "stride": [1, 2], "padding": [1, 1]}, [(2, 7, 9)]),
        ({"kernel": 3, "ceil_mode": True}, [(2, 8, 10)]),
        ({"kernel": [2, 3], "stride": 2, "padding": [1, 0], "ceil_mode": True}, [(3, 7, 8)]),
        ({"kernel": 2}, [(1, 5, 4)]),
    ],
    "avgpool2d": [
        ({"kernel": [3, 2], "stride": [2, 1], "padding": [1, 0]}, [(2, 7, 9)]),
        ({"kernel": 3, "ceil_mode": True}, [(2, 8, 10)]),
        ({"kernel": 2, "stride": 3, "padding": 1, "ceil_mode": True}, [(1, 9, 6)]),
    ],
    "adaptive_avgpool2d": [({"output_size": [2, 3]}, [(3, 7, 8)]), ({}, [(2, 5, 6)])],
    "batchnorm": [({"affine": False, "eps": 1e-3, "momentum": 0.2}, [(5,)]), ({}, [(3, 2, 4)])],
    "instancenorm": [({"affine": False, "track_running_stats": True}, [(3, 4, 5)]), ({"eps": 0.01}, [(2, 3, 3)])],
    "add": [({}, [(3, 4, 5), (3, 1, 1)]), ({}, [(1, 4, 5), (3, 4, 1)]), ({}, [(6,), (6,)])],
    "mul": [({}, [(3, 4, 5), (1, 4, 5)]), ({}, [(3, 1, 5), (3, 4, 1)]), ({}, [(4,), (4,)])],
    "concat": [({}, [(1, 2, 2), (2, 2, 2), (3, 2, 2)]), ({}, [(3,), (4,)])],
    "channel_slice": [({"stop": 4}, [(4, 3, 2)]), ({"start": 2, "stop": 5}, [(5,)])],
    "dropout": [({}, [(3, 4)])],
    "flatten": [({}, [(6,)]), ({}, [(2, 3, 4)])],
    "global_avgpool": [({}, [(4, 3, 5)])],
    "identity": [({}, [(3,)])],
    "reshape": [({"shape": [2, 3, 4]}, [(24,)]), ({"shape": [12]}, [(3, 2, 2)]), ({"shape": [3, 4]}, [(2, 6)])],
    "to_anchors": [({"per_anchor": 2}, [(6, 2, 3)]), ({"per_anchor": 3}, [(3, 4, 1)])],
    "act": [({}, [(3, 4)])] + [({"kind": k}, [(2, 3)]) for k in KINDS],
}


def all_cases():
    for name in sorted(REGISTRY):
        raw, shapes = REGISTRY[name].example
        yield name, raw, shapes
        for raw, shapes in CASES.get(name, []):
            yield name, raw, shapes


ALL = list(all_cases())


def run(name: str, raw: dict, shapes, inputs=None, inplace: bool = False, batch: int = 2):
    """The primitive's output on random inputs, with the module that computed it (or None)."""
    prim = REGISTRY[name]
    args = prim.Args.model_validate(raw)
    if inputs is None:
        inputs = [torch.randn(batch, *s) for s in shapes]
    if prim.stateless_function:
        graph = fx.Graph()
        nodes = [graph.placeholder(f"x{i}") for i in range(len(inputs))]
        graph.output(prim.emit(graph, args, nodes, inplace))
        module = fx.GraphModule(nn.Module(), graph)
        return module(*inputs), None
    module = prim.build(args, shapes, inplace).eval()
    with torch.no_grad():
        return module(*inputs), module


def torch_macs(module: nn.Module | None, x: list[torch.Tensor]) -> int:
    """MACs per sample of every conv and linear the forward runs, taken from the torch modules themselves."""
    if module is None:
        return 0
    total = []

    def hook(mod, inputs, output):
        per_sample = output[0].numel()
        if isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            total.append(per_sample * mod.in_channels // mod.groups * kh * kw)
        else:
            total.append(per_sample * mod.in_features)

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.no_grad():
        module(*x)
    for handle in handles:
        handle.remove()
    return sum(total)


@pytest.mark.parametrize("name, raw, shapes", ALL, ids=[f"{n}-{i}" for i, (n, *_) in enumerate(ALL)])
def test_static_rules_equal_the_torch_module(name, raw, shapes):
    prim = REGISTRY[name]
    args = prim.Args.model_validate(raw)
    out = prim.infer(args, shapes)
    x = [torch.randn(2, *s) for s in shapes]
    result, module = run(name, raw, shapes, [t.clone() for t in x])
    assert tuple(result.shape) == (2, *out) and all(type(d) is int for d in out)
    params = sum(p.numel() for p in module.parameters()) if module is not None else 0
    counted, macs = prim.count_params(args, shapes), prim.count_macs(args, shapes, out)
    assert counted == params and type(counted) is int
    assert macs == torch_macs(module, x) and type(macs) is int
    assert isinstance(prim.key_args(args), dict)


def conv_formula(c_in, raw, out):
    """Conv params and MACs by the textbook formula."""
    kh, kw = raw["kernel"] if isinstance(raw["kernel"], list) else (raw["kernel"],) * 2
    per_output = c_in // raw.get("groups", 1) * kh * kw
    params = raw["out"] * per_output + (raw["out"] if raw.get("bias", True) else 0)
    return params, math.prod(out) * per_output


@pytest.mark.parametrize("raw, chw, out", [
    ({"out": 6, "kernel": [3, 5], "stride": [2, 1], "padding": [1, 2], "dilation": [1, 2], "groups": 2,
      "bias": False}, (4, 11, 13), (6, 6, 9)),
    ({"out": 8, "kernel": 3, "stride": 2, "padding": 1, "groups": 2}, (4, 9, 9), (8, 5, 5)),
    ({"out": 3, "kernel": 1}, (5, 6, 7), (3, 6, 7)),
    ({"out": 4, "kernel": [2, 4], "stride": [3, 2], "dilation": [2, 1]}, (2, 10, 12), (4, 3, 5)),
])
def test_conv2d_exact_numbers(raw, chw, out):
    prim = REGISTRY["conv2d"]
    args = prim.Args.model_validate(raw)
    assert prim.infer(args, [chw]) == out
    params, macs = conv_formula(chw[0], raw, out)
    assert prim.count_params(args, [chw]) == params
    assert prim.count_macs(args, [chw], out) == macs


def test_conv2d_module_settings():
    raw = {"out": 6, "kernel": [3, 5], "stride": [2, 1], "padding": [1, 2], "dilation": [1, 2], "groups": 2,
           "bias": False}
    conv = REGISTRY["conv2d"].build(REGISTRY["conv2d"].Args.model_validate(raw), [(4, 11, 13)])
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
            conv.groups, conv.bias) == (4, 6, (3, 5), (2, 1), (1, 2), (1, 2), 2, None)
    conv = REGISTRY["conv2d"].build(REGISTRY["conv2d"].Args.model_validate({"out": 2, "kernel": 3}), [(5, 4, 4)])
    assert (conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups) == ((3, 3), (1, 1), (0, 0),
                                                                                         (1, 1), 1)
    assert conv.bias is not None and conv.bias.shape == (2,)


def test_linear_module_and_numbers():
    prim = REGISTRY["linear"]
    for bias in (True, False):
        args = prim.Args.model_validate({"out": 3, "bias": bias})
        fc = prim.build(args, [(7,)])
        assert (fc.in_features, fc.out_features, fc.bias is not None) == (7, 3, bias)
        assert prim.infer(args, [(7,)]) == (3,)
        assert prim.count_params(args, [(7,)]) == 21 + 3 * bias
        assert prim.count_macs(args, [(7,)], (3,)) == 21


def split(total: int, parts: int) -> list[int]:
    """MixNet's split: equal parts, the first takes the remainder."""
    sizes = [total // parts] * parts
    sizes[0] += total - sum(sizes)
    return sizes


@pytest.mark.parametrize("raw, chw, out", [
    ({"out": 7, "kernel": [3, 3], "stride": 2, "padding": 1}, (5, 9, 10), (7, 5, 5)),
    ({"out": 10, "kernel": [1, 3, 5], "padding": 0}, (8, 5, 5), None),  # kernels give different sizes
    ({"out": 10, "kernel": [3, 1, 3], "padding": 0}, (8, 5, 5), None),  # two different sizes
    ({"out": 11, "kernel": [1, 1, 1, 1]}, (9, 3, 4), (11, 3, 4)),
    ({"out": 4, "kernel": [5], "padding": 2, "stride": 3}, (3, 8, 6), (4, 3, 2)),
])
def test_grouped_conv2d_exact_numbers(raw, chw, out):
    prim = REGISTRY["grouped_conv2d"]
    args = prim.Args.model_validate(raw)
    if out is None:
        with pytest.raises(ValueError) as info:
            prim.infer(args, [chw])
        assert str(info.value) == "the kernels give different output sizes; use padding that keeps them equal"
        return
    assert prim.infer(args, [chw]) == out
    ins, outs = split(chw[0], len(raw["kernel"])), split(raw["out"], len(raw["kernel"]))
    params = sum(i * o * k * k for i, o, k in zip(ins, outs, raw["kernel"]))
    assert prim.count_params(args, [chw]) == params
    assert prim.count_macs(args, [chw], out) == params * out[1] * out[2]
    module = prim.build(args, [chw])
    convs = list(module.grouped_conv)
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0], c.groups)
            for c in convs] == [(i, o, k, raw.get("stride", 1), raw.get("padding", 0), 1)
                                for i, o, k in zip(ins, outs, raw["kernel"])]
    assert all(c.bias is None for c in convs)
    assert module.split == ins and type(module).__name__ == "SplitConv"
    assert repr(module).startswith("GroupedConv2d(")


@pytest.mark.parametrize("raw, chw, out", [
    ({"kernel": [3, 5, 7], "stride": 2}, (10, 9, 9), (10, 5, 5)),
    ({"kernel": [3, 5]}, (7, 6, 8), (7, 6, 8)),
    ({"kernel": [1, 3, 5, 7], "stride": 3}, (9, 10, 11), (9, 4, 4)),
])
def test_mixed_conv2d_exact_numbers(raw, chw, out):
    prim = REGISTRY["mixed_conv2d"]
    args = prim.Args.model_validate(raw)
    assert prim.infer(args, [chw]) == out
    parts = split(chw[0], len(raw["kernel"]))
    params = sum(c * k * k for c, k in zip(parts, raw["kernel"]))
    assert prim.count_params(args, [chw]) == params
    assert prim.count_macs(args, [chw], out) == params * out[1] * out[2]
    module = prim.build(args, [chw])
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0], c.groups, c.bias)
            for c in module.mixed_depthwise_conv] == [(c, c, k, raw.get("stride", 1), k // 2, c, None)
                                                      for c, k in zip(parts, raw["kernel"])]
    assert repr(module).startswith("MDConv(")


def test_split_conv_source_and_forward():
    from archspec.ops._torch_modules import SplitConv

    module = SplitConv("MDConv", "mixed", [3, 2], [(3, 3, 3, 1, 1, 3), (2, 2, 5, 1, 2, 2)])
    assert module.source() == "SplitConv('MDConv', 'mixed', [3, 2], [(3, 3, 3, 1, 1, 3), (2, 2, 5, 1, 2, 2)])"
    assert module._get_name() == "MDConv" and module.display == "MDConv" and module.attr == "mixed"
    x = torch.randn(2, 5, 6, 6)
    with torch.no_grad():
        expected = torch.cat([module.mixed[0](x[:, :3]), module.mixed[1](x[:, 3:])], dim=1)
        assert torch.equal(module(x), expected)
    single = SplitConv("GroupedConv2d", "grouped_conv", [4], [(4, 2, 1, 1, 0, 1)])
    with torch.no_grad():
        x = torch.randn(2, 4, 3, 3)
        assert torch.equal(single(x), single.grouped_conv[0](x))


# ---- pools --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["maxpool2d", "avgpool2d"])
def test_pool_shape_rule_equals_torch_everywhere(name):
    """Sizes 1..9, kernels 1..4, strides 1..3, paddings 0..2, floor and ceil: the rule equals torch, and
    refuses exactly what torch refuses."""
    prim = REGISTRY[name]
    for size, k, s, pad, ceil in itertools.product(range(1, 10), range(1, 5), range(1, 4), range(3), (False, True)):
        args = prim.Args.model_validate({"kernel": [k, 2], "stride": [s, 1], "padding": [pad, 0],
                                         "ceil_mode": ceil})
        try:
            inferred = prim.infer(args, [(1, size, 3)])
        except ValueError:
            inferred = "refused"
        try:
            got = tuple(prim.build(args, [(1, size, 3)])(torch.randn(1, 1, size, 3)).shape[1:])
        except RuntimeError:
            got = "refused"
        assert inferred == got, (size, k, s, pad, ceil)


def test_ceil_mode_sizes_a_following_layer(tmp_path):
    """A ceil-mode pool's static shape sizes the linear layer after it: a floor rule breaks the forward."""
    import archspec

    path = tmp_path / "ceil.yaml"
    path.write_text("archspec: 1\nname: c\ninput: [2, 8, 8]\nnodes:\n"
                    "  - {name: pool, block: maxpool2d, kernel: 3, ceil_mode: true}\n"
                    "  - {name: flat, block: flatten}\n  - {name: fc, block: linear, out: 2}\n")
    graph = archspec.compile(path)
    assert graph.call("pool").out_shape == (2, 3, 3)
    with torch.no_grad():
        assert archspec.build(graph).eval()(torch.randn(1, 2, 8, 8)).shape == (1, 2)


@pytest.mark.parametrize("name, cls", [("maxpool2d", nn.MaxPool2d), ("avgpool2d", nn.AvgPool2d)])
def test_pool_module_settings_and_messages(name, cls):
    prim = REGISTRY[name]
    args = prim.Args.model_validate({"kernel": [3, 2], "stride": [2, 1], "padding": [1, 0], "ceil_mode": True})
    pool = prim.build(args, [(2, 8, 8)])
    assert type(pool) is cls
    assert (pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode) == ((3, 2), (2, 1), (1, 0), True)
    assert type(pool.kernel_size) is tuple and type(pool.stride) is tuple and type(pool.padding) is tuple
    assert prim.key_args(args) == {"k": [3, 2], "s": [2, 1]}
    default = prim.Args.model_validate({"kernel": 3})
    pool = prim.build(default, [(2, 8, 8)])
    assert (pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode) == (3, 3, 0, False)
    assert prim.key_args(default) == {"k": 3, "s": 3}
    assert prim.infer(default, [(2, 8, 8)]) == (2, 2, 2)
    assert prim.infer(prim.Args.model_validate({"kernel": 3, "ceil_mode": True}), [(2, 8, 8)]) == (2, 3, 3)
    assert prim.infer(prim.Args.model_validate({"kernel": 3, "ceil_mode": True}), [(2, 3, 3)]) == (2, 1, 1)
    assert prim.infer(prim.Args.model_validate({"kernel": [1, 3], "ceil_mode": True}), [(2, 1, 4)]) == (2, 1, 2)
    assert prim.infer(prim.Args.model_validate({"kernel": [3, 1], "ceil_mode": True}), [(2, 4, 1)]) == (2, 2, 1)
    with pytest.raises(ValueError) as info:
        prim.infer(prim.Args.model_validate({"kernel": [2, 4], "padding": [1, 3]}), [(2, 8, 8)])
    assert str(info.value) == f"{name} padding [1, 3] is more than half the kernel [2, 4]"
    with pytest.raises(ValueError) as info:
        prim.infer(prim.Args.model_validate({"kernel": [4, 2], "padding": [2, 2]}), [(2, 8, 8)])
    assert str(info.value) == f"{name} padding [2, 2] is more than half the kernel [4, 2]"
    with pytest.raises(ValueError) as info:
        prim.infer(prim.Args.model_validate({"kernel": 3}), [(2, 2, 5)])
    assert str(info.value) == f"{name} collapses 2×5 to 0×1"
    with pytest.raises(ValueError) as info:
        prim.infer(prim.Args.model_validate({"kernel": [1, 4], "stride": 1, "ceil_mode": True}), [(2, 4, 2)])
    assert str(info.value) == f"{name} collapses 4×2 to 4×-1"
    with pytest.raises(ValueError) as info:
        prim.infer(prim.Args.model_validate({"kernel": [4, 1], "stride": 1, "ceil_mode": True}), [(2, 2, 4)])
    assert str(info.value) == f"{name} collapses 2×4 to -1×4"
    with pytest.raises(ValueError) as info:
        prim.infer(default, [(8,)])
    assert str(info.value) == f"{name} needs a C×H×W (image) input, got 8"


def test_adaptive_pool_module_and_shape():
    prim = REGISTRY["adaptive_avgpool2d"]
    args = prim.Args.model_validate({"output_size": [2, 3]})
    assert prim.infer(args, [(4, 9, 9)]) == (4, 2, 3)
    assert prim.build(args, [(4, 9, 9)]).output_size == (2, 3)
    args = prim.Args.model_validate({})
    assert prim.infer(args, [(4, 9, 9)]) == (4, 1, 1)
    assert prim.build(args, [(4, 9, 9)]).output_size == 1
    with pytest.raises(ValueError) as info:
        prim.infer(args, [(4, 9)])
    assert str(info.value) == "adaptive_avgpool2d needs a C×H×W (image) input, got 4×9"


# ---- norms, dropout, activations ---------------------------------------------------------------------------
def test_batchnorm_modules():
    prim = REGISTRY["batchnorm"]
    args = prim.Args.model_validate({"eps": 1e-3, "momentum": 0.2, "affine": False})
    bn = prim.build(args, [(5,)])
    assert type(bn) is nn.BatchNorm1d
    assert (bn.num_features, bn.eps, bn.momentum, bn.affine) == (5, 1e-3, 0.2, False)
    assert prim.count_params(args, [(5,)]) == 0 and prim.infer(args, [(5,)]) == (5,)
    args = prim.Args.model_validate({})
    bn = prim.build(args, [(3, 4, 4)])
    assert type(bn) is nn.BatchNorm2d
    assert (bn.num_features, bn.eps, bn.momentum, bn.affine) == (3, 1e-5, 0.1, True)
    assert prim.count_params(args, [(3, 4, 4)]) == 6 and prim.infer(args, [(3, 4, 4)]) == (3, 4, 4)
    with pytest.raises(ValueError) as info:
        prim.infer(args, [(3, 4)])
    assert str(info.value) == "batchnorm needs a C (vector) or C×H×W (image) input, got 3×4"


def test_instancenorm_module():
    prim = REGISTRY["instancenorm"]
    args = prim.Args.model_validate({"eps": 1e-3, "momentum": 0.2, "affine": False, "track_running_stats": True})
    norm = prim.build(args, [(5, 2, 2)])
    assert type(norm) is nn.InstanceNorm2d
    assert (norm.num_features, norm.eps, norm.momentum, norm.affine, norm.track_running_stats) == \
        (5, 1e-3, 0.2, False, True)
    assert prim.count_params(args, [(5, 2, 2)]) == 0 and prim.infer(args, [(5, 2, 2)]) == (5, 2, 2)
    args = prim.Args.model_validate({})
    norm = prim.build(args, [(3, 2, 2)])
    assert (norm.eps, norm.momentum, norm.affine, norm.track_running_stats) == (1e-5, 0.1, True, False)
    assert prim.count_params(args, [(3, 2, 2)]) == 6
    with pytest.raises(ValueError) as info:
        prim.infer(args, [(3,)])
    assert str(info.value) == "instancenorm needs a C×H×W (image) input, got 3"


def test_dropout_module():
    prim = REGISTRY["dropout"]
    args = prim.Args.model_validate({"p": 0.25})
    drop = prim.build(args, [(4,)])
    assert type(drop) is nn.Dropout and drop.p == 0.25
    assert prim.key_args(args) == {"p": 0.25} and prim.infer(args, [(4,)]) == (4,)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_activation_inplace(kind):
    cls_name, can_inplace, _ = KINDS[kind]
    prim = REGISTRY[kind]
    assert prim.supports_inplace is can_inplace
    for module in (prim.build(prim.Args(), [(3,)], inplace=True),
                   REGISTRY["act"].build(REGISTRY["act"].Args.model_validate({"kind": kind}), [(3,)], inplace=True)):
        assert type(module) is getattr(nn, cls_name)
        assert getattr(module, "inplace", False) is can_inplace
    for module in (prim.build(prim.Args(), [(3,)]),
                   REGISTRY["act"].build(REGISTRY["act"].Args.model_validate({"kind": kind}), [(3,)])):
        assert getattr(module, "inplace", False) is False
    x = torch.randn(2, 3)
    out = prim.build(prim.Args(), [(3,)], inplace=True)(x)
    assert (out.data_ptr() == x.data_ptr()) is can_inplace
    assert REGISTRY["act"].key_args(REGISTRY["act"].Args.model_validate({"kind": kind})) == {"kind": kind}
    assert REGISTRY["act"].build(REGISTRY["act"].Args(), [(3,)]).__class__ is nn.ReLU


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("inplace", [False, True])
def test_activation_function_form_equals_its_module(kind, inplace):
    """An unnamed activation outside a seq is a function call (F.relu): the same values as its module, in place
    exactly where the module would be."""
    from torch import fx

    _, can_inplace, _ = KINDS[kind]
    for prim, args in ((REGISTRY[kind], REGISTRY[kind].Args()),
                       (REGISTRY["act"], REGISTRY["act"].Args.model_validate({"kind": kind}))):
        graph = fx.Graph()
        graph.output(prim.emit(graph, args, [graph.placeholder("x")], inplace))
        function = fx.GraphModule(nn.Module(), graph)
        x = torch.randn(2, 3, 4, 4) * 8  # past relu6's and the hard functions' knees
        expected = prim.build(args, [(3, 4, 4)])(x.clone())
        y = x.clone()
        out = function(y)
        assert torch.equal(out, expected)
        assert (out.data_ptr() == y.data_ptr()) is (inplace and can_inplace)


def test_identity_and_flatten_modules():
    assert type(REGISTRY["identity"].build(None, [(3,)])) is nn.Identity
    flat = REGISTRY["flatten"].build(None, [(2, 3, 4)])
    assert type(flat) is nn.Flatten and flat.start_dim == 1 and flat(torch.zeros(5, 2, 3, 4)).shape == (5, 24)
    assert REGISTRY["flatten"].infer(None, [(2, 3, 4)]) == (24,)


# ---- functional primitives: values ---------------------------------------------------------------------------
def test_add_values_and_inplace():
    a, b, c = torch.randn(2, 3, 4), torch.randn(2, 3, 1), torch.randn(2, 3, 4)
    out, _ = run("add", {}, [(3, 4), (3, 1), (3, 4)], [a.clone(), b.clone(), c.clone()])
    assert torch.equal(out, a + b + c)
    first = a.clone()
    out, _ = run("add", {}, [(3, 4), (3, 1), (3, 4)], [first, b, c], inplace=True)
    assert torch.equal(out, a + b + c) and out.data_ptr() == first.data_ptr() and torch.equal(first, a + b + c)
    first = a.clone()
    out, _ = run("add", {}, [(3, 4), (3, 4)], [first, c])
    assert torch.equal(out, a + c) and torch.equal(first, a)


def test_add_is_not_in_place_by_default():
    graph = fx.Graph()
    a, b, c = (graph.placeholder(n) for n in "abc")
    node = REGISTRY["add"].emit(graph, None, [a, b, c])
    assert node.target is operator.add and node.args[0].target is operator.add
    node = REGISTRY["add"].emit(graph, None, [a, b, c], inplace=True)
    assert node.target is operator.iadd and node.args[0].target is operator.iadd


def test_mul_concat_slice_pool_reshape_anchor_values():
    a, b = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 1, 1)
    assert torch.equal(run("mul", {}, [(3, 4, 5), (3, 1, 1)], [a, b])[0], a * b)
    c = torch.randn(2, 2, 4, 5)
    assert torch.equal(run("concat", {}, [(3, 4, 5), (2, 4, 5)], [a, c])[0], torch.cat([a, c], 1))
    assert torch.equal(run("channel_slice", {"start": 1, "stop": 3}, [(3, 4, 5)], [a])[0], a[:, 1:3])
    assert torch.equal(run("global_avgpool", {}, [(3, 4, 5)], [a])[0], a.mean((2, 3)))
    assert torch.equal(run("global_avgpool", {"keepdim": True}, [(3, 4, 5)], [a])[0], a.mean((2, 3), keepdim=True))
    assert torch.equal(run("reshape", {"shape": [5, 12]}, [(3, 4, 5)], [a])[0], a.reshape(2, 5, 12))
    assert torch.equal(run("flatten", {}, [(3, 4, 5)], [a])[0], a.reshape(2, 60))
    x = torch.randn(2, 6, 2, 3)
    assert torch.equal(run("to_anchors", {"per_anchor": 3}, [(6, 2, 3)], [x])[0],
                       x.permute(0, 2, 3, 1).reshape(2, -1, 3))
    x1 = torch.randn(1, 6, 2, 3)
    assert torch.equal(run("to_anchors", {"per_anchor": 2}, [(6, 2, 3)], [x1])[0],
                       x1.permute(0, 2, 3, 1).reshape(1, 6 * 2 * 3 // 2, 2))


# ---- shape rules and their errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("name, shapes, out", [
    ("add", [(3, 4, 5), (3, 1, 1)], (3, 4, 5)),
    ("add", [(4, 5), (3, 1, 1)], (3, 4, 5)),
    ("add", [(1, 1, 5), (3, 4, 1), (1, 4, 5)], (3, 4, 5)),
    ("add", [(1,), (1,)], (1,)),
    ("add", [(2, 1), (2, 1)], (2, 1)),
    ("mul", [(3, 1, 5), (1, 4, 1)], (3, 4, 5)),
    ("mul", [(5,), (3, 4, 1)], (3, 4, 5)),
    ("concat", [(1, 2, 2), (2, 2, 2), (3, 2, 2)], (6, 2, 2)),
    ("concat", [(3,), (4,)], (7,)),
    ("flatten", [(3, 4, 5)], (60,)),
    ("identity", [(3, 4, 5)], (3, 4, 5)),
    ("dropout", [(7,)], (7,)),
    ("relu", [(7, 2)], (7, 2)),
])
def test_shape_rules(name, shapes, out):
    prim = REGISTRY[name]
    assert prim.infer(prim.Args(), shapes) == out
    assert prim.count_params(prim.Args(), shapes) == 0 and prim.count_macs(prim.Args(), shapes, out) == 0


@pytest.mark.parametrize("name, raw, shapes, message", [
    ("add", {}, [(3, 4, 5), (2, 4, 5)], "add inputs do not match: 3×4×5, 2×4×5"),
    ("add", {}, [(3, 4), (3, 1), (3, 5)], "add inputs do not match: 3×4, 3×1, 3×5"),
    ("mul", {}, [(4,), (3, 5)], "mul inputs do not match: 4, 3×5"),
    ("concat", {}, [(3, 4, 5), (2, 4, 6)], "concat inputs differ outside the channel dimension: 3×4×5, 2×4×6"),
    ("concat", {}, [(3,), (3, 1)], "concat inputs differ outside the channel dimension: 3, 3×1"),
    ("concat", {}, [(3, 1), (3, 1, 1)], "concat inputs differ outside the channel dimension: 3×1, 3×1×1"),
    ("concat", {}, [(3, 4, 5), (2, 3, 5)], "concat inputs differ outside the channel dimension: 3×4×5, 2×3×5"),
    ("concat", {}, [(2, 4, 5), (1, 4, 5), (2, 4, 4)],
     "concat inputs differ outside the channel dimension: 2×4×5, 1×4×5, 2×4×4"),
    ("channel_slice", {"start": 2, "stop": 2}, [(4, 3)], "slice 2:2 is not inside 4 channels"),
    ("channel_slice", {"start": 1, "stop": 5}, [(4, 3)], "slice 1:5 is not inside 4 channels"),
    ("channel_slice", {"start": 3, "stop": 2}, [(4,)], "slice 3:2 is not inside 4 channels"),
    ("reshape", {"shape": [5, 5]}, [(24,)], "cannot view 24 as 5×5"),
    ("reshape", {"shape": [2, 3]}, [(3, 2, 1, 2)], "cannot view 3×2×1×2 as 2×3"),
    ("to_anchors", {"per_anchor": 4}, [(6, 2, 3)], "6×2×3 has 6 channels, not a multiple of 4"),
    ("to_anchors", {"per_anchor": 4}, [(8, 3)], "to_anchors needs a C×H×W (image) input, got 8×3"),
    ("linear", {"out": 2}, [(3, 4, 4)], "linear needs a C (vector) input, got 3×4×4"),
    ("global_avgpool", {}, [(3,)], "global_avgpool needs a C×H×W (image) input, got 3"),
    ("conv2d", {"out": 4}, [(3, 4)], "conv2d needs a C×H×W (image) input, got 3×4"),
    ("conv2d", {"out": 4, "groups": 2}, [(3, 4, 4)], "groups=2 must divide in channels 3 and out channels 4"),
    ("conv2d", {"out": 3, "groups": 2}, [(4, 4, 4)], "groups=2 must divide in channels 4 and out channels 3"),
    ("conv2d", {"out": 4, "kernel": [3, 5]}, [(1, 3, 4)], "conv2d collapses 3×4 to 1×0"),
    ("conv2d", {"out": 4, "kernel": [3, 1], "dilation": [2, 1]}, [(1, 4, 4)], "conv2d collapses 4×4 to 0×4"),
    ("grouped_conv2d", {"out": 4, "kernel": [1, 1, 1]}, [(2, 4, 4)], "3 groups need at least 3 in and out channels"),
    ("grouped_conv2d", {"out": 2, "kernel": [1, 1, 1]}, [(4, 4, 4)], "3 groups need at least 3 in and out channels"),
    ("grouped_conv2d", {"out": 2, "kernel": [1]}, [(4,)], "grouped_conv2d needs a C×H×W (image) input, got 4"),
    ("grouped_conv2d", {"out": 2, "kernel": [5]}, [(4, 4, 6)], "grouped_conv2d collapses 4×6 to 0×2"),
    ("mixed_conv2d", {"kernel": [3, 5, 7]}, [(2, 8, 8)], "3 kernel groups need at least as many channels"),
    ("mixed_conv2d", {"kernel": [3, 4]}, [(2, 8, 8)],
     "even and odd kernels give different output sizes; use odd kernels"),
    ("mixed_conv2d", {"kernel": [3]}, [(2, 8)], "mixed_conv2d needs a C×H×W (image) input, got 2×8"),
    ("mixed_conv2d", {"kernel": [3], "stride": 9}, [(2, 0, 8)], "mixed_conv2d collapses 0×8 to 0×1"),
])
def test_shape_rule_errors(name, raw, shapes, message):
    prim = REGISTRY[name]
    with pytest.raises(ValueError) as info:
        prim.infer(prim.Args.model_validate(raw), shapes)
    assert str(info.value) == message


@pytest.mark.parametrize("name, raw, shapes, out", [
    ("channel_slice", {"start": 0, "stop": 4}, [(4, 3)], (4, 3)),
    ("channel_slice", {"stop": 1}, [(4, 3, 2)], (1, 3, 2)),
    ("channel_slice", {"start": 3, "stop": 4}, [(4,)], (1,)),
    ("reshape", {"shape": [2, 3, 4]}, [(24,)], (2, 3, 4)),
    ("to_anchors", {"per_anchor": 4}, [(8, 3, 5)], (30, 4)),
    ("to_anchors", {"per_anchor": 1}, [(3, 1, 2)], (6, 1)),
    ("global_avgpool", {}, [(3, 4, 5)], (3,)),
    ("global_avgpool", {"keepdim": True}, [(3, 4, 5)], (3, 1, 1)),
    ("grouped_conv2d", {"out": 3, "kernel": [1, 1, 1]}, [(3, 2, 2)], (3, 2, 2)),
    ("mixed_conv2d", {"kernel": [3, 5]}, [(2, 8, 8)], (2, 8, 8)),
    ("conv2d", {"out": 2, "kernel": 3}, [(1, 3, 3)], (2, 1, 1)),
])
def test_shape_rules_at_the_edges(name, raw, shapes, out):
    prim = REGISTRY[name]
    assert prim.infer(prim.Args.model_validate(raw), shapes) == out


@pytest.mark.parametrize("name, raw, expected", [
    ("conv2d", {"out": 4, "kernel": [3, 5], "stride": 2, "groups": 4}, {"k": [3, 5], "s": 2, "g": 4}),
    ("grouped_conv2d", {"out": 4, "kernel": [3, 5], "stride": 2}, {"k": [3, 5], "s": 2}),
    ("mixed_conv2d", {"kernel": [3, 5], "stride": 2}, {"k": [3, 5], "s": 2}),
    ("channel_slice", {"start": 1, "stop": 3}, {"start": 1, "stop": 3}),
    ("reshape", {"shape": [2, 3]}, {"shape": [2, 3]}),
    ("to_anchors", {"per_anchor": 4}, {"k": 4}),
    ("dropout", {}, {"p": 0.5}),
    ("act", {}, {"kind": "relu"}),
    ("linear", {"out": 3}, {}),
    ("add", {}, {}),
])
def test_key_args(name, raw, expected):
    prim = REGISTRY[name]
    assert prim.key_args(prim.Args.model_validate(raw)) == expected


# ---- the registry's own helpers ----------------------------------------------------------------------------------
def test_registry_helpers():
    from archspec.ops import registry

    assert registry.format_shape(()) == "scalar" and registry.format_shape((3, 4)) == "3×4"
    assert registry.pair(3) == (3, 3) and registry.pair([2, 5]) == (2, 5)
    assert registry.conv_out(10, 3, 2, 1) == 5 and registry.conv_out(10, 3, 1, 0, 2) == 6
    assert registry.conv_out(7, 2, 3, 0) == 2
    assert registry.spatial_out((1, 9, 10), [3, 1], [2, 3], [1, 0], [1, 1]) == (5, 4)
    assert registry.spatial_out((1, 9, 10), 3, 1, 0, [2, 3]) == (5, 4)
    with pytest.raises(ValueError) as info:
        registry.spatial_out((1, 2, 5), 3, 1, 0)
    assert str(info.value) == "this op collapses 2×5 to 0×3"


def test_need_rank_messages():
    from archspec.ops.registry import need_rank

    need_rank((2, 3), [2], "op")
    with pytest.raises(ValueError) as info:
        need_rank((2, 3), [1, 4], "op")
    assert str(info.value) == "op needs a C (vector) or rank-4 input, got 2×3"
    with pytest.raises(ValueError) as info:
        need_rank((), [3], "op")
    assert str(info.value) == "op needs a C×H×W (image) input, got scalar"


def test_primitive_defaults_and_registration():
    from archspec.ops.registry import REGISTRY as REG
    from archspec.ops.registry import Primitive, get, register

    class Plain(Primitive):
        name = "zz_plain_for_test"
        category = "shape"

    prim = Plain()
    assert prim.infer(None, [(3, 4)]) == (3, 4)
    assert prim.count_params(None, [(3, 4)]) == 0 and prim.count_macs(None, [(3, 4)], (3, 4)) == 0
    assert prim.key_args(None) == {} and prim.emit(None, None, []) is None
    assert prim.has_module is False and prim.stateless_function is False
    with pytest.raises(NotImplementedError):
        prim.build(None, [(3,)])
    assert REG["conv2d"].has_module is True and REG["conv2d"].stateless_function is False
    assert REG["add"].has_module is False and REG["add"].stateless_function is True
    assert get("conv2d") is REG["conv2d"] and get("no_such_primitive") is None
    try:
        assert register(Plain) is Plain and isinstance(REG["zz_plain_for_test"], Plain)
        with pytest.raises(ValueError) as info:
            register(Plain)
        assert str(info.value) == "primitive 'zz_plain_for_test' is already registered"
    finally:
        REG.pop("zz_plain_for_test", None)


def test_load_plugins_registers_new_entry_points(monkeypatch):
    import importlib.metadata

    import archspec.ops as ops
    from archspec.ops.registry import Primitive

    class Plugged(Primitive):
        name = "zz_plugged_for_test"
        category = "shape"

    class Point:
        def __init__(self, name, value):
            self.name, self.value = name, value

        def load(self):
            return self.value

    asked = []

    def entry_points(group):
        asked.append(group)
        return [Point("relu", type(REGISTRY["relu"])), Point("zz_plugged_for_test", Plugged)]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    try:
        assert ops.load_plugins() == ["zz_plugged_for_test"]
        assert asked == ["archspec.primitives"] and isinstance(REGISTRY["zz_plugged_for_test"], Plugged)
    finally:
        REGISTRY.pop("zz_plugged_for_test", None)


def test_discovery_imports_every_public_file_in_name_order(monkeypatch):
    import importlib
    import pkgutil

    import archspec.ops as ops

    imported = []
    monkeypatch.setattr(importlib, "import_module", imported.append)
    ops._discover()
    public = sorted(m.name for m in pkgutil.iter_modules(ops.__path__) if not m.name.startswith("_"))
    assert imported == [f"archspec.ops.{name}" for name in public] and "archspec.ops.conv2d" in imported


def test_every_file_in_ops_is_registered():
    """Discovery imports every public file: each registers the primitive it names."""
    import pkgutil

    import archspec.ops as ops

    files = {m.name for m in pkgutil.iter_modules(ops.__path__)}
    assert {"_pool", "_broadcast", "_torch_modules"} <= files
    public = {f for f in files if not f.startswith("_")} - {"registry", "activations"}
    assert public <= set(REGISTRY) | {"avgpool2d", "maxpool2d", "global_avgpool"}
    assert {type(REGISTRY[n]).__module__.rpartition(".")[2] for n in REGISTRY} == public | {"activations"}
