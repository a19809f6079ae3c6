"""Regressions for the soundness issue: each spec either compiles to exactly what it says, or is refused
with a located error. The rules are in docs/spec-language.md; its examples run here."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest
import torch
from conftest import ROOT
from torch import nn

import archspec
from archspec.errors import ArchspecError
from archspec.spec.names import MODEL_ATTRIBUTES, TORCH_MODULE_ATTRIBUTES

DOC = (ROOT / "docs/spec-language.md").read_text()


def doc_example(tag: str) -> str:
    return re.search(rf"```yaml\n# example: {tag}\n(.*?)```", DOC, re.S).group(1)


def write(tmp_path, text: str, name: str = "spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def refused(path, code: str, **overrides) -> ArchspecError:
    with pytest.raises(ArchspecError) as err:
        archspec.compile(path, **overrides)
    assert err.value.code == code, err.value.format()
    return err.value


def line_of(path, err: ArchspecError) -> str:
    return path.read_text().splitlines()[err.location.line - 1]


# ---- 1. names resolve to the node that exists --------------------------------------------------------

@pytest.mark.parametrize(("s", "channels", "op"), [(1, 8, "concat"), (2, 4, "add")])
def test_exclusive_pair_resolves_to_the_node_that_exists(tmp_path, s, channels, op):
    path = write(tmp_path, doc_example("exclusive-pair"))
    graph = archspec.compile(path, s=s)
    assert graph.output_shapes() == [(channels, 8, 8)]
    assert graph.call("out").inputs == ["cat"] and graph.call("cat").op == op
    model = archspec.build(graph, seed=0).eval()
    x = torch.randn(2, 4, 8, 8)
    a, b = model.a(x), model.b(x)
    want = torch.relu(torch.cat([a, b], 1) if op == "concat" else a + b)
    torch.testing.assert_close(model(x), want)


def test_both_orders_of_an_exclusive_pair_agree(tmp_path):
    text = doc_example("exclusive-pair")
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if "block: concat" in line)
    lines[i], lines[i + 1] = lines[i + 1], lines[i]
    swapped = write(tmp_path, "\n".join(lines) + "\n", "swapped.yaml")
    for s in (1, 2):
        assert archspec.compile(swapped, s=s).output_shapes() == \
            archspec.compile(write(tmp_path, text), s=s).output_shapes()


def test_the_chain_goes_on_from_the_node_before_an_absent_one(tmp_path):
    path = write(tmp_path, """archspec: 1
name: chain
input: [2, 6, 6]
nodes:
  - {name: a, block: conv2d, out: 3, kernel: 1}
  - {name: b, block: conv2d, out: 5, kernel: 1, from: input, when: false}
  - {name: c, block: relu}
""")
    graph = archspec.compile(path)
    assert graph.call("c").inputs == ["a"] and graph.output_shapes() == [(3, 6, 6)]


def test_reading_an_absent_name_before_a_later_node_of_that_name_is_refused(tmp_path):
    path = write(tmp_path, """archspec: 1
name: ambiguous
input: [2, 6, 6]
nodes:
  - {name: a, block: conv2d, out: 2, kernel: 1}
  - {name: x, block: relu, when: false}
  - {name: y, block: add, from: [a, x]}
  - {name: x, block: sigmoid, from: y}
""")
    err = refused(path, "graph.ambiguous_name")
    assert err.location.line == 8 and "name: x" in line_of(path, err)


def test_two_existing_nodes_of_one_name_are_refused_even_without_modules(tmp_path):
    path = write(tmp_path, """archspec: 1
name: twice
input: [2, 6, 6]
nodes:
  - {name: a, block: relu}
  - {name: s, block: add, from: [a, input]}
  - {name: s, block: add, from: [s, a]}
""")
    err = refused(path, "graph.duplicate_name")
    assert err.location.line == 7


# ---- 2. names that collide with the machinery --------------------------------------------------------

def _one_node(name: str) -> str:
    return f"archspec: 1\nname: n\ninput: [4, 8, 8]\nnodes:\n  - {{name: {name}, block: conv2d, out: 4}}\n"


@pytest.mark.parametrize("name", ["input", "input0", "training", "forward", "type", "state_dict", "_modules",
                                  "compile", "arch_name", "generated_code", "_archspec_block", "__init__"])
def test_reserved_names_are_refused_at_validate_with_the_reason(tmp_path, name):
    path = write(tmp_path, _one_node(name))
    proc = subprocess.run([sys.executable, "-m", "archspec.cli", "validate", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert f"spec.yaml:5:12: nodes[0].name: {name!r}" in proc.stderr and "[schema.reserved_name]" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_reserved_names_in_a_table_row_are_refused_at_the_row(tmp_path):
    path = write(tmp_path, """archspec: 1
name: rows
input: [4, 8, 8]
nodes:
  - block: conv2d
    table:
      columns: [name, out]
      rows: [[ok, 4], [training, 4]]
""")
    err = refused(path, "schema.reserved_name")
    assert (err.location.line, err.location.col) == (8, 24)


def test_the_reserved_list_covers_the_installed_torch():
    # Names starting with "__" are all refused (torch._dynamo adds some to nn.Module when it loads).
    owned = {n for n in set(dir(nn.Module)) | set(vars(nn.Module())) if not n.startswith("__")}
    assert owned <= TORCH_MODULE_ATTRIBUTES, sorted(owned - TORCH_MODULE_ATTRIBUTES)
    from archspec.backends.torch_builder import ArchspecModel

    model = ArchspecModel("m", {})
    own = {n for n in set(dir(ArchspecModel)) | set(vars(model)) if not n.startswith("__")} - owned
    assert own <= MODEL_ATTRIBUTES | {n for n in own if n.startswith("_archspec")}, sorted(own - MODEL_ATTRIBUTES)


TRICKY = """archspec: 1
name: tricky
input: [4, 8, 8]
blocks:
  B:
    block: B
    nodes:
      - {name: block, block: conv2d, out: 4, kernel: 1}
      - {name: self, block: batchnorm}
      - {name: x, block: relu}
      - {name: torch, block: conv2d, out: 4, kernel: 1, from: input}
      - {name: nn, block: add, from: [x, torch]}
nodes:
  - {name: class, block: conv2d, out: 4, kernel: 3, padding: 1}
  - {name: def, block: B}
  - {name: lambda, block: conv2d, out: 4, kernel: 1}
"""


def test_names_torch_accepts_work_in_every_backend(tmp_path):
    path = write(tmp_path, TRICKY)
    model = archspec.load(path, seed=0).eval()
    assert "def.block.weight" in model.state_dict() and "class.weight" in model.state_dict()
    x = torch.randn(2, 4, 8, 8)
    want = model(x)
    exported = tmp_path / "tricky.py"
    assert archspec.cli_main(["export", str(path), "--format", "python", "-o", str(exported)]) == 0
    spec = importlib.util.spec_from_file_location("tricky_export", exported)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    twin = module.build().eval()
    twin.load_state_dict(model.state_dict(), strict=True)
    torch.testing.assert_close(twin(x), want, rtol=0, atol=0)
    assert archspec.cli_main(["draw", str(path), "--format", "dot", "--depth", "3", "-o", str(tmp_path / "t.dot")]) == 0
    assert "class" in (tmp_path / "t.dot").read_text() and "def.block" in (tmp_path / "t.dot").read_text()


def test_keyword_names_export_to_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    import numpy as np
    import onnxruntime

    from archspec.backends.export import export_onnx

    model = archspec.load(write(tmp_path, TRICKY), seed=0).eval()
    out = tmp_path / "tricky.onnx"
    export_onnx(model, out)
    x = np.random.default_rng(0).standard_normal((3, 4, 8, 8)).astype("float32")
    got = onnxruntime.InferenceSession(str(out)).run(None, {"x": x})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# ---- 3. dead modules ----------------------------------------------------------------------------------

def test_a_dead_module_is_refused_at_its_node_with_a_hold_hint(tmp_path):
    path = write(tmp_path, doc_example("dead-module"))
    err = refused(path, "graph.dead_module")
    assert "name: b" in line_of(path, err) and "hold: true" in err.hint


def test_a_held_module_is_not_dead(tmp_path):
    text = doc_example("dead-module").replace("from: input}", "from: input, hold: true, input_shape: [4, 8, 8]}")
    graph = archspec.compile(write(tmp_path, text))
    assert graph.modules["b"].held and graph.total_params == 2 * (4 * 4 * 9 + 4)


def test_a_dead_composite_is_reported_once_at_its_own_node(tmp_path):
    path = write(tmp_path, """archspec: 1
name: dead_block
input: [8, 8, 8]
nodes:
  - {name: used, block: conv2d, out: 8, kernel: 1}
  - {name: unused, block: Bottleneck, planes: 2, from: input}
  - {name: out, block: relu, from: used}
""")
    err = refused(path, "graph.dead_module")
    assert err.location.line == 6 and "'unused'" in err.message


def test_a_module_that_only_one_mode_calls_is_not_dead(tmp_path):
    graph = archspec.compile(ROOT / "specs/osnet_x1_0.yaml")
    assert "classifier" not in {graph.call(c).module for c in graph.live("eval")}


def test_hold_on_a_composite_is_refused(tmp_path):
    path = write(tmp_path, """archspec: 1
name: hold_block
input: [8, 8, 8]
nodes:
  - {name: held, block: Bottleneck, planes: 2, hold: true, input_shape: [8, 8, 8]}
  - {name: out, block: relu}
""")
    refused(path, "graph.hold_composite")


# ---- 4. summary rows where each call happens ---------------------------------------------------------

def test_summary_prints_each_call_of_a_shared_module_where_it_happens():
    graph = archspec.compile(ROOT / "specs/resnet50.yaml")
    names = [row.name for row in archspec_rows(graph, 3) if row.name.startswith("layer1.0.")]
    assert names == ["layer1.0." + n for n in ("conv1", "bn1", "relu", "conv2", "bn2", "relu", "conv3", "bn3",
                                               "downsample", "add", "relu")]
    text = archspec.summary(graph, depth=3)
    rows = [line.split()[0] for line in text.splitlines()[3:] if line.startswith("layer1.0.relu")]
    assert len(rows) == 3


def archspec_rows(graph, depth):
    from archspec.backends.summary import rows

    return rows(graph, depth)


# ---- 5. table columns that would change structure ----------------------------------------------------

STAGES = """archspec: 1
name: stages
input: [3, 32, 32]
nodes:
  - table:
      columns: [name, out, {column}]
      rows: [[s1, 8, 2], [s2, 16, 2]]
    seq:
      - {{block: conv2d, out: out, kernel: 3, padding: 1}}
      - {{block: maxpool2d, kernel: 2}}
"""


def test_a_repeat_column_on_a_seq_table_is_refused_with_an_explanation(tmp_path):
    path = write(tmp_path, STAGES.format(column="repeat"))
    err = refused(path, "schema.repeat_column")
    assert err.location.line == 5 and "Put `repeat:` on the block inside" in err.message


@pytest.mark.parametrize("column", ["when", "from", "block", "call", "seq", "hold"])
def test_columns_named_after_node_keys_are_refused(tmp_path, column):
    err = refused(write(tmp_path, STAGES.format(column=column)), "schema.reserved_column")
    assert err.location.line == 6


def test_a_name_column_inside_a_seq_is_refused(tmp_path):
    path = write(tmp_path, """archspec: 1
name: named_rows
input: [3, 8, 8]
nodes:
  - name: body
    seq:
      - block: conv2d
        table:
          columns: [name, out]
          rows: [[a, 4], [b, 8]]
""")
    err = refused(path, "table.name_in_seq")
    assert err.location.line == 10


def test_a_repeat_key_on_a_seq_repeats_it_unchanged(tmp_path):
    graph = archspec.compile(write(tmp_path, """archspec: 1
name: repeated_seq
input: [3, 16, 16]
nodes:
  - name: stage
    repeat: 2
    seq:
      - {block: conv2d, out: 4, kernel: 3, padding: 1}
      - {block: maxpool2d, kernel: 2}
"""))
    assert graph.output_shapes() == [(4, 4, 4)] and "stage.1.0" in graph.modules


# ---- bugs the differential tests found --------------------------------------------------------------

def test_in_channels_of_a_repeated_node_checks_the_first_repeat(tmp_path):
    graph = archspec.compile(write(tmp_path, """archspec: 1
name: rep
input: [2, 8, 8]
nodes:
  - {name: body, block: conv2d, out: 5, kernel: 1, repeat: 3, in_channels: 2}
"""))
    assert graph.output_shapes() == [(5, 8, 8)]


def test_calling_a_block_whose_body_calls_its_own_module(tmp_path):
    graph = archspec.compile(write(tmp_path, """archspec: 1
name: nested_calls
input: [3, 5, 5]
blocks:
  Inner:
    block: Inner
    nodes:
      - {name: n0, block: batchnorm}
      - {name: n1, call: n0}
  Outer:
    block: Outer
    nodes:
      - {name: inner, block: Inner}
nodes:
  - {name: n0, block: Outer}
  - {name: n1, call: n0, from: input}
  - {name: out, block: add, from: [n0, n1]}
"""))
    assert graph.modules["n0.inner.n0"].calls == 4


def test_an_unnamed_module_outside_a_seq_is_refused(tmp_path):
    """It would make no module: validate passed, and the forward then crashed on a missing conv."""
    path = write(tmp_path, """archspec: 1
name: unnamed
input: [3, 8, 8]
nodes:
  - {block: conv2d, out: 4, kernel: 3}
  - {name: c2, block: conv2d, out: 2}
""")
    err = refused(path, "graph.unnamed")
    assert err.location.line == 5


def test_a_column_that_does_nothing_is_refused(tmp_path):
    path = write(tmp_path, """archspec: 1
name: unused
input: [3, 8, 8]
nodes:
  - block: conv2d
    out: 8
    table:
      columns: [name, out]
      rows: [[a, 4], [b, 16]]
""")
    err = refused(path, "table.unused_column")
    assert (err.location.line, err.location.col) == (8, 23) and "sets `out` itself" in err.message


@pytest.mark.parametrize(("where", "name"), [("block", "repeat"), ("block", "when"), ("block", "in_channels"),
                                             ("spec", "in_channels"), ("spec", "in_shape")])
def test_params_that_could_never_take_effect_are_refused(tmp_path, where, name):
    block = f"""blocks:
  B:
    block: B
    params:
      {name}: {{type: int, default: 1}}
    nodes:
      - {{name: c, block: conv2d, out: 2}}
""" if where == "block" else f"params:\n  {name}: {{type: int, default: 1}}\n"
    text = f"archspec: 1\nname: p\ninput: [3, 8, 8]\n{block}nodes:\n  - {{name: c, block: conv2d, out: 2}}\n"
    path = write(tmp_path, text)
    err = refused(path, "schema.reserved_param")
    assert f"{name}:" in line_of(path, err)


def test_no_primitive_arg_is_named_like_a_node_key():
    from archspec.ops import REGISTRY
    from archspec.spec.models import BUILTIN_VALUES, CALL_KEYS

    for primitive in REGISTRY.values():
        assert not set(primitive.Args.model_fields) & (CALL_KEYS | BUILTIN_VALUES), primitive.name


def test_calling_a_held_module_is_refused(tmp_path):
    """It would run nothing: the call's name would silently stand for its input."""
    path = write(tmp_path, """archspec: 1
name: call_held
input: [4]
nodes:
  - {name: fc, block: linear, out: 4, hold: true, input_shape: [4]}
  - {name: y, call: fc}
""")
    err = refused(path, "graph.call_held")
    assert err.location.line == 6


def test_a_tap_into_a_module_called_twice_is_refused(tmp_path):
    """Each call has its own inner values; a dotted reference cannot say which one it means."""
    path = write(tmp_path, """archspec: 1
name: tap_shared
input: [8, 8, 8]
nodes:
  - {name: a, block: Bottleneck, planes: 2}
  - {name: b, call: a}
  - {name: tap, block: relu, from: a.conv1}
  - {name: out, block: concat, from: [b, tap]}
""")
    err = refused(path, "graph.ambiguous_tap")
    assert err.location.line == 7


def test_a_call_inside_a_seq_takes_no_index(tmp_path):
    graph = archspec.compile(write(tmp_path, """archspec: 1
name: call_in_seq
input: [4, 8, 8]
nodes:
  - {name: act, block: relu}
  - name: body
    seq:
      - {block: conv2d, out: 4, kernel: 1}
      - {call: act}
      - {block: batchnorm}
"""))
    assert [m for m in graph.modules if m.startswith("body.")] == ["body.0", "body.1"]
    assert graph.modules["body.1"].type == "batchnorm" and graph.modules["act"].calls == 2
