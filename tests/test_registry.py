"""Every registered primitive: its static shape and params rules agree with the module torch runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import fx

from archspec.ops import REGISTRY


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_static_rules_match_torch(name):
    prim = REGISTRY[name]
    raw_args, shapes = prim.example
    args = prim.Args.model_validate(raw_args)
    out = prim.infer(args, shapes)
    inputs = [torch.randn(2, *s) for s in shapes]
    if prim.stateless_function:
        graph = fx.Graph()
        nodes = [graph.placeholder(f"x{i}") for i in range(len(inputs))]
        graph.output(prim.emit(graph, args, nodes))
        result = fx.GraphModule(torch.nn.Module(), graph)(*inputs)
        params = 0
    else:
        module = prim.build(args, shapes)
        result = module(*inputs)
        params = sum(p.numel() for p in module.parameters())
    assert tuple(result.shape) == (2, *out)
    assert prim.count_params(args, shapes) == params


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_primitive_is_documented_and_categorised(name):
    prim = REGISTRY[name]
    assert type(prim).__doc__, f"{name} needs a docstring: it becomes docs/blocks.md"
    assert prim.category in {"conv", "norm", "activation", "pool", "linear", "merge", "shape", "regularization",
                             "attention"}


def test_duplicate_registration_is_refused():
    from archspec.ops import register

    with pytest.raises(ValueError, match="already registered"):
        register(type(REGISTRY["relu"]))


def test_inplace_is_never_used_on_a_tensor_read_twice():
    import inspect

    from conftest import ROOT

    import archspec

    model = archspec.load(ROOT / "specs/resnet50.yaml")
    code = inspect.getsource(type(model.layer1[0]).forward)  # the Bottleneck's own generated forward
    assert "+=" in code  # the residual add reuses bn3's output, as torchvision does
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    model.train()
    model(x).sum().backward()  # autograd would raise if an in-place op clobbered a saved tensor


def test_a_primitive_file_added_to_ops_is_discovered(tmp_path):
    """Adding a primitive is adding its file: no import list to edit."""
    import shutil
    import subprocess
    import sys

    import archspec

    package = tmp_path / "archspec"
    shutil.copytree(Path(archspec.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "ops" / "zz_double.py").write_text(
        "from archspec.ops.registry import Primitive, register\n\n\n"
        "@register\nclass Double(Primitive):\n    name = 'zz_double'\n    category = 'activation'\n")
    code = "import sys, archspec.ops as o; print('zz_double' in o.REGISTRY, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.stdout.split() == ["True", "False"], out.stderr


def test_no_primitive_name_is_a_string_literal_outside_ops():
    """Backends ask primitives what they are (registry hooks: stateful, passthrough_in_eval, folds_into_previous,
    absorbs_norm, vector_weight, fused, source), never their names."""
    import ast

    import archspec
    from archspec.graph.init_rules import NONLINEARITIES

    package = Path(archspec.__file__).parent
    # Other vocabularies that share words with primitive names: torch.nn.init's gain names, and the categories
    # that colour the diagram.
    other_vocabularies = {"init_rules.py": set(NONLINEARITIES), "diagram.py": {"linear"}}
    found = []
    for path in sorted(package.rglob("*.py")):
        if "ops" in path.relative_to(package).parts:
            continue
        allowed = other_vocabularies.get(path.name, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in REGISTRY and node.value not in allowed:
                found.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert not found, found
