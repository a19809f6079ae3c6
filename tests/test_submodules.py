"""Every composite block is an ordinary nn.Module: its own class and forward, hooks, slicing, standalone calls,
print(model) like the reference, and the tools people point at torchvision's models (torchinfo, feature
extraction, torch.compile)."""

from __future__ import annotations

import copy
import pickle
from collections import Counter, defaultdict

import pytest
import torch
from conftest import ROOT, SPECS
from torch import nn

import archspec
from archspec.backends.forwards import ForwardPlanner
from archspec.backends.torch_builder import inplace_calls

# one spec per family, at a small input (the SSD heads need the 300x300 anchor grid)
FAMILIES = {"resnet50": (3, 64, 64), "se_ibn_resnet50_reid": (3, 64, 32), "ft_net": (3, 64, 64),
            "mobilenet_v2": (3, 64, 64), "mixnet_s": (3, 64, 64), "osnet_x0_25": (3, 64, 32),
            "osnet_ibn_x1_0": (3, 64, 32), "mobilenetv2_ssdlite": (3, 300, 300)}
# containers whose parent runs their calls itself, because a value inside them is read from outside
SSD_INLINED = {"base_net", "base_net.14", "base_net.14.conv", "extras", "classification_headers",
               "regression_headers"}


def _perturb_norms(model: nn.Module) -> None:
    """Random affine norms and running statistics, so that a wrong call order or a skipped module shows."""
    gen = torch.Generator().manual_seed(5)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            for tensor in (module.weight, module.bias, module.running_mean):
                tensor.data.copy_(torch.randn(tensor.shape, generator=gen) * 0.5 + (tensor is module.weight))
            module.running_var.data.copy_(torch.rand(module.running_var.shape, generator=gen) + 0.5)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_container_is_a_class_named_after_its_block(spec):
    graph = archspec.compile(spec)
    model = archspec.build(graph, meta=True)
    for path, decl in graph.modules.items():
        if decl.kind != "container":
            continue
        module = model.get_submodule(path)
        if decl.type == "Sequential":
            assert type(module) is nn.Sequential, path
        else:
            assert type(module).__name__ == decl.type and type(module).forward is not nn.Module.forward, path
    assert type(model).__name__ == (graph.class_name or graph.name)


def _inlined(graph) -> set[str]:
    planner = ForwardPlanner(graph, inplace_calls(graph))
    called = {inv.path for token, inv in graph.invocations.items() if token in planner.callable}
    return {inv.path for inv in graph.invocations.values()} - called


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request):
    graph = archspec.compile(ROOT / "specs" / f"{request.param}.yaml")
    model = archspec.build(graph, seed=0).eval()
    _perturb_norms(model)
    return request.param, graph, model


def test_hooks_fire_once_per_call_and_every_block_runs_standalone(family):
    name, graph, model = family
    seen: dict[str, list] = defaultdict(list)
    handles = []
    for path, decl in graph.modules.items():
        if decl.kind == "container":  # clones: later in-place ops (`+=`, ReLU(inplace)) may reuse the tensors
            module = model.get_submodule(path)
            handles.append(module.register_forward_pre_hook(
                lambda m, args, path=path: seen[path].append([tuple(a.clone() for a in args)])))
            handles.append(module.register_forward_hook(
                lambda m, args, out, path=path: seen[path][-1].append(out.clone())))
    x = torch.randn(2, *FAMILIES[name], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    inlined = _inlined(graph)
    assert inlined == (SSD_INLINED if name == "mobilenetv2_ssdlite" else set())
    calls = Counter(inv.path for inv in graph.invocations.values())
    for path, decl in graph.modules.items():
        if decl.kind != "container":
            continue
        assert len(seen[path]) == (0 if path in inlined else calls[path]), path  # OSNet's gate: 4 calls
        with torch.no_grad():
            for args, out in seen[path]:
                assert torch.equal(model.get_submodule(path)(*args), out), path


def test_a_tapped_block_still_runs_standalone():
    """SSDLite reads inside base_net[14], so its parent runs block 14's layers; the block's own forward works."""
    model = archspec.load(ROOT / "specs/mobilenetv2_ssdlite.yaml", seed=0).eval()
    _perturb_norms(model)
    got = {}
    model.base_net[13].register_forward_hook(lambda m, a, out: got.update(before=out))
    model.base_net[15].register_forward_hook(lambda m, a, out: got.update(after=a[0]))
    with torch.no_grad():
        model(torch.randn(1, 3, 300, 300))
        assert type(model.base_net[14]).__name__ == "InvertedResidual"
        assert torch.equal(model.base_net[14](got["before"]), got["after"])


def test_slicing_children_keeps_the_backbone():
    """The ReID and feature-extraction idiom: drop the head with children() slicing."""
    model = archspec.load(ROOT / "specs/resnet50.yaml", seed=0).eval()
    _perturb_norms(model)
    got = {}
    model.layer4.register_forward_hook(lambda m, a, out: got.update(layer4=out))
    body = nn.Sequential(*list(model.children())[:-2])
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        model(x)
        assert torch.equal(body(x), got["layer4"])
        z = torch.randn(1, 64, 8, 8)
        assert torch.equal(model.layer1(z), model.layer1[2](model.layer1[1](model.layer1[0](z))))


def test_mode_dependent_outputs_stay_at_the_root():
    model = archspec.load(ROOT / "specs/osnet_x0_25.yaml", num_classes=7, seed=0)
    fired = []
    model.conv5.register_forward_hook(lambda m, a, out: fired.append(out.shape[1]))
    x = torch.randn(2, 3, 64, 32)
    assert model.train()(x).shape == (2, 7) and model.eval()(x).shape == (2, 512)
    assert fired == [128, 128]  # x0_25: conv5 has 128 channels; both modes run it
    assert "classifier" in model.generated_code("train") and "classifier" not in model.generated_code("eval")


def test_generated_classes_are_shared_pickled_and_copied():
    model = archspec.load(ROOT / "specs/resnet50.yaml", seed=0).eval()
    # layer1.1 and layer1.2 have one configuration; layer1.0 has a downsample branch
    assert type(model.layer1[1]) is type(model.layer1[2]) is not type(model.layer1[0])
    assert type(model.layer2[1]) is type(model.layer1[1])  # widths live in the modules, not the program
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
            assert type(clone.layer1[0]) is type(model.layer1[0]) and type(clone).__name__ == "ResNet"
            assert torch.equal(clone(x), expected)


# ---- the references' print(model), line for line --------------------------------------------------------

def _reference(name: str):
    from oracles import MobileNetV2, torchreid_osnet, torchvision_model

    return {"resnet50": lambda: torchvision_model("resnet50"),
            "osnet_x1_0": lambda: torchreid_osnet("osnet_x1_0", num_classes=1000),
            "mobilenet_v2": MobileNetV2}[name]()


@pytest.mark.parametrize("name", ["resnet50", "osnet_x1_0", "mobilenet_v2"])
def test_print_equals_the_reference_line_for_line(name):
    ref = _reference(name)
    if ref is None:
        pytest.skip("the reference library is not installed (pip install '.[oracles]')")
    model = archspec.load(ROOT / "specs" / f"{name}.yaml")
    assert str(model).splitlines() == str(ref).splitlines()
    assert list(model.state_dict()) == list(ref.state_dict())
    assert [n for n, _ in model.named_modules()] == [n for n, _ in ref.named_modules()]


# ---- tools that walk the module tree -------------------------------------------------------------------

def test_torchinfo_names_blocks_and_shows_their_shapes():
    torchinfo = pytest.importorskip("torchinfo")
    model = archspec.load(ROOT / "specs/resnet50.yaml", seed=0).eval()
    stats = torchinfo.summary(model, input_size=(1, 3, 64, 64), depth=3, verbose=0)
    assert stats.summary_list[0].class_name == "ResNet"
    first = next(row for row in stats.summary_list if row.class_name == "Bottleneck")
    assert (first.depth, first.var_name, first.output_size) == (2, "0", [1, 256, 16, 16])
    assert sum(1 for row in stats.summary_list if row.class_name == "Bottleneck") == 16
    assert stats.total_params == 25_557_032


def test_feature_extraction_reads_a_block_output():
    fe = pytest.importorskip("torchvision.models.feature_extraction")
    model = archspec.load(ROOT / "specs/resnet50.yaml", seed=0).eval()
    _perturb_norms(model)
    got = {}
    model.layer4.register_forward_hook(lambda m, a, out: got.update(layer4=out))
    extractor = fe.create_feature_extractor(model, {"layer4": "f", "layer2.1": "g"})
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        model(x)
        features = extractor(x)
    assert torch.equal(features["f"], got["layer4"]) and features["g"].shape == (2, 512, 8, 8)


def test_torch_compile_fullgraph_through_the_blocks():
    model = archspec.load(ROOT / "specs/osnet_x0_25.yaml", seed=0).eval()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    x = torch.randn(1, 3, 64, 32)
    with torch.no_grad():
        assert torch.allclose(compiled(x), model(x), atol=1e-6)


# ---- the spec fields that shape the class tree -----------------------------------------------------------

def _spec(tmp_path, body: str):
    path = tmp_path / "s.yaml"
    path.write_text("archspec: 1\nname: s\ninput: [4, 8, 8]\n" + body)
    return path


def test_unnamed_activation_is_a_function_named_one_a_module(tmp_path):
    model = archspec.load(_spec(tmp_path, "nodes:\n  - {name: c, block: conv2d, out: 4}\n  - {block: relu6}\n"
                                          "  - {name: act, block: swish}\n"))
    assert [n for n, _ in model.named_children()] == ["c", "act"]
    code = model.generated_code()
    assert "torch.nn.functional.relu6(c, inplace = True)" in code and "self.act(" in code
    x = torch.randn(1, 4, 8, 8) * 8
    with torch.no_grad():
        assert torch.equal(model(x), nn.functional.silu(nn.functional.relu6(model.c(x))))


def test_order_sets_registration_order_and_is_checked(tmp_path):
    blocks = """blocks:
  B:
    block: B
    order: [b, a, missing_when_false]
    nodes:
      - {name: a, block: conv2d, out: 4}
      - {name: b, block: batchnorm}
      - {name: missing_when_false, block: relu, when: false}
      - {name: c, block: relu}
"""
    model = archspec.load(_spec(tmp_path, blocks + "nodes:\n  - {name: blk, block: B}\n"))
    assert [n for n, _ in model.blk.named_children()] == ["b", "a", "c"]
    assert list(model.state_dict())[:2] == ["blk.b.weight", "blk.b.bias"]
    with pytest.raises(archspec.ArchspecError) as info:
        archspec.compile(_spec(tmp_path, blocks.replace("[b, a,", "[b, aa,") + "nodes:\n  - {name: blk, block: B}\n"))
    assert info.value.code == "schema.order" and "'aa'" in str(info.value) and info.value.location.line == 7


def test_class_name_names_the_root(tmp_path):
    model = archspec.load(_spec(tmp_path, "class_name: TinyNet\nnodes:\n  - {name: c, block: conv2d, out: 4}\n"))
    assert type(model).__name__ == "TinyNet" and str(model).startswith("TinyNet(")
    with pytest.raises(archspec.ArchspecError) as info:
        archspec.compile(_spec(tmp_path, "class_name: 'not a name'\nnodes:\n  - {name: c, block: conv2d, out: 4}\n"))
    assert info.value.location.line == 4
