"""The docs' examples run, and generated docs are current."""

from __future__ import annotations

import re
import subprocess
import sys

import torch
from conftest import ROOT

import archspec

DOC = (ROOT / "docs/spec-language.md").read_text()


def yaml_blocks(text: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", text, re.S)


def test_worked_example_builds_from_the_docs_alone(tmp_path):
    example = next(b for b in yaml_blocks(DOC) if "name: tiny_resnet" in b)
    path = tmp_path / "tiny_resnet.yaml"
    path.write_text(example)
    model = archspec.load(path)
    keys = list(model.state_dict())
    assert keys[0] == "stem.weight" and "stage2.0.shortcut.0.weight" in keys and keys[-1] == "fc.bias"
    assert "stage1.0.shortcut.0.weight" not in keys
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_readme_resnet_example_equals_the_shipped_spec(tmp_path):
    readme = (ROOT / "README.md").read_text()
    example = next(b for b in yaml_blocks(readme) if "name: resnet50" in b)
    path = tmp_path / "r.yaml"
    path.write_text(example)
    shipped_graph = archspec.compile(ROOT / "specs/resnet50.yaml")
    graph = archspec.compile(path)
    assert graph.total_params == shipped_graph.total_params
    assert graph.total_macs() == shipped_graph.total_macs()
    assert graph.output_shapes() == shipped_graph.output_shapes()
    example, shipped = archspec.build(graph, seed=0), archspec.build(shipped_graph, seed=1)
    assert [(k, v.shape) for k, v in example.state_dict().items()] == \
        [(k, v.shape) for k, v in shipped.state_dict().items()]
    example.load_state_dict(shipped.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(example.eval()(x), shipped.eval()(x))


def test_generated_docs_are_current():
    from archspec.docs_gen import blocks_text
    from archspec.schema import schema_text

    assert (ROOT / "docs/blocks.md").read_text() == blocks_text(), "run: archspec blocks > docs/blocks.md"
    assert (ROOT / "docs/archspec.schema.json").read_text() == schema_text(), \
        "run: archspec schema -o docs/archspec.schema.json"


def test_every_block_is_in_the_docs():
    from archspec.blocks import shipped_blocks
    from archspec.ops import REGISTRY

    text = (ROOT / "docs/blocks.md").read_text()
    for name in [*REGISTRY, *shipped_blocks()]:
        assert f"`{name}`" in text


def test_variant_extends_a_base(tmp_path):
    base = (ROOT / "specs/resnet50.yaml").read_text()
    (tmp_path / "resnet50.yaml").write_text(base)
    (tmp_path / "resnet26.yaml").write_text(
        "archspec: 1\nname: resnet26\nextends: resnet50.yaml\nparams:\n  layers: [2, 2, 2, 2]\n  num_classes: 10\n")
    graph = archspec.compile(tmp_path / "resnet26.yaml")
    assert graph.name == "resnet26"
    assert len([m for m in graph.modules if m.count(".") == 1 and m.startswith("layer")]) == 8
    assert graph.output_shapes()[0] == (10,)
    (tmp_path / "bad.yaml").write_text("archspec: 1\nname: bad\nextends: resnet50.yaml\nparams:\n  layer: [1]\n")
    proc = subprocess.run([sys.executable, "-m", "archspec.cli", "validate", str(tmp_path / "bad.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "bad.yaml:5:3" in proc.stderr and "did you mean 'layers'" in proc.stderr
    (tmp_path / "escape.yaml").write_text("archspec: 1\nname: e\nextends: ../../etc/passwd.yaml\n")
    proc = subprocess.run([sys.executable, "-m", "archspec.cli", "validate", str(tmp_path / "escape.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "schema.extends_path" in proc.stderr


def test_taps_inside_blocks_and_several_outputs(tmp_path):
    text = (ROOT / "specs/mobilenet_v2.yaml").read_text()
    # Outputs that skip the classifier would leave its weights dead (graph.dead_module): hold them.
    held = text.replace("{block: linear, out: num_classes}", "{block: linear, out: num_classes, hold: true, "
                        "input_shape: [1280]}")
    assert held != text
    spec = held + "outputs: [features.14.conv.2, features]\n"
    path = tmp_path / "taps.yaml"
    path.write_text(spec)
    graph = archspec.compile(path)
    assert graph.output_shapes() == [(576, 14, 14), (1280, 7, 7)]
    model = archspec.load(path).eval()
    with torch.no_grad():
        tap, last = model(torch.randn(1, 3, 224, 224))
    assert tap.shape == (1, 576, 14, 14) and last.shape == (1, 1280, 7, 7)
    assert "classifier" not in model.generated_code("eval")  # dead nodes are not run


def test_hold_module_is_kept_but_not_called(tmp_path):
    path = tmp_path / "hold.yaml"
    path.write_text("archspec: 1\nname: h\ninput: [3, 8, 8]\nnodes:\n"
                    "  - {name: conv, block: conv2d, out: 4}\n"
                    "  - {name: fc, block: linear, out: 7, hold: true, input_shape: [16]}\n"
                    "  - {name: pool, block: global_avgpool}\n")
    model = archspec.load(path)
    assert "fc.weight" in model.state_dict() and model.fc.in_features == 16
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 4)
    assert archspec.compile(path).total_params == sum(p.numel() for p in model.parameters())


def test_blocks_are_modules_example(tmp_path):
    """docs/spec-language.md, "Blocks are modules": class names, registration order, standalone calls."""
    example = next(b for b in yaml_blocks(DOC) if "name: ordered" in b)
    path = tmp_path / "ordered.yaml"
    path.write_text(example)
    model = archspec.load(path, seed=0).eval()
    assert type(model).__name__ == "OrderedNet" and type(model.unit1).__name__ == type(model.unit2).__name__ == "Unit"
    assert type(model.unit1) is not type(model.unit2)
    assert [n for n, _ in model.unit1.named_children()] == ["conv", "bn", "relu"]
    assert [n for n, _ in model.unit2.named_children()] == ["conv", "bn", "shortcut", "relu"]
    got = {}
    model.unit2.register_forward_hook(lambda m, args, out: got.update(inp=args[0].clone(), out=out.clone()))
    with torch.no_grad():
        model(torch.randn(2, 3, 16, 16))
        assert torch.equal(model.unit2(got["inp"]), got["out"])
