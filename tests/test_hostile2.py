"""Hostile input, round 2 (issue 13): bounded work, expression cost, output and input paths, control
characters, init rules, weights edge cases, command-line arguments, diagrams, file-level errors, variants.

Everything here runs in-process or in short subprocesses with small timeouts; nothing may take more than a
few seconds, so a regression shows up as a failure, not as a hung CI job."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import ROOT

import archspec
from archspec.cli import main
from archspec.errors import ArchspecError
from archspec.graph.limits import Limits
from archspec.spec.expr import ExprError, evaluate

BAD = ROOT / "tests/bad"
BAD_WEIGHTS = ROOT / "tests/bad_weights"
HEADER = "archspec: 1\nname: s\ninput: [3, 8, 8]\n"


def write(folder: Path, text: str, name: str = "s.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def error_of(path, limits: Limits | None = None, **overrides) -> ArchspecError:
    with pytest.raises(ArchspecError) as info:
        archspec.compile(path, limits, **overrides)
    return info.value


def cli(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def within(seconds: float, fn, *args):
    """Run fn in a thread; fail (instead of hanging the suite) if it does not return in time."""
    result: list = []

    def run() -> None:
        try:
            result.append(("ok", fn(*args)))
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            result.append(("raised", exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert result, f"did not return within {seconds} s"
    kind, value = result[0]
    if kind == "raised":
        raise value
    return value


# ---- class 2: expressions cost bounded time and memory --------------------------------------------------
@pytest.mark.parametrize("text", [
    "round(x, -10**8)", "round(7, 10**8)", "sum([[1]*4096]*4096, [])", "'%04000000000d' % 1", "(-8)**0.5",
    "'%.1000000000f' % 1.0", "'%s' % [1]", "[[1]*4096]*4096", "[1]*4096*4096", "[[]]*4096*4096",
    "int('9'*4000)", "int(1e300)", "ceil(1e300)", "float('nan')", "float('1e400')", "1e308*10",
    "sum(['a', 'b'], '')", "max([[1]*4096]*4096)", "min()", "len(5)", "0**-1", "-(2**63)*2",
    "make_divisible(5, 0)", "round_channels(1e300, 2.0)", "[1]*4095 + [2]*4095", "'a' * 4097", "x[True]",
])
def test_expression_is_refused_quickly(text):
    start = time.perf_counter()
    with pytest.raises(ExprError):
        evaluate(text, {"x": [1.5]})
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("text, value", [
    ("round(2.5)", 2), ("round(1.26, 1)", 1.3), ("sum([1, 2, 3])", 6), ("sum([1.5], 1)", 2.5),
    ("max(3, 4)", 4), ("min([3, 4])", 3), ("int('12')", 12), ("(-8)**2", 64), ("(-8)**-1", -0.125),
    ("2**0.5 > 1.41", True), ("'ab' * 2", "abab"), ("[1, 2] + [3]", [1, 2, 3]), ("len([[1, 2]] * 3)", 3),
])
def test_ordinary_expressions_still_work(text, value):
    assert evaluate(text, {}) == value


def test_expression_failures_are_located_expr_errors(tmp_path):
    for text in ("round(8, -10**8)", "len('%0400d' % 1)", "int((-8)**0.5)", "len(sum([[1]*64]*64, []))"):
        path = write(tmp_path, HEADER + f'nodes:\n  - {{name: c, block: conv2d, out: "{text}", kernel: 3}}\n')
        err = error_of(path)
        assert err.code == "expr.invalid" and (err.location.line, err.location.col) == (5, 35), err.format()


# ---- class 6: init rules are fully checked at validate ---------------------------------------------------
@pytest.mark.parametrize("rule, fragment", [
    ("weight: \"kaiming_normal(mode='bogus')\"", "mode must be one of"),
    ("weight: \"kaiming_uniform(nonlinearity='gelu')\"", "nonlinearity must be one of"),
    ("weight: \"normal(0.0, -1.0)\"", "std must not be negative"),
    ("bias: \"uniform(1.0, 0.0)\"", "must not be above b"),
    ("weight: \"trunc_normal(0.0, 0.0)\"", "must be positive"),
    ("weight: \"constant()\"", "needs its argument 'value'"),
    ("weight: \"constant(1, 2)\"", "at most 1 argument"),
    ("weight: \"normal(0.0, std=1.0, mean=2.0)\"", "twice"),
    ("weight: \"normal(sdt=1.0)\"", "did you mean 'std'"),
    ("weight: \"xavier_normal(gain='a')\"", "must be a number"),
    ("weight: \"normal(True)\"", "must be a number"),
    ("weight: \"zeros(1)\"", "at most 0"),
    ("weight: \"kaiming_normal(a=10**100)\"", "too large"),
    ("weight: \"gaussian()\"", "unknown init scheme"),
    ("bias: \"xavier_uniform()\"", "two or more dimensions"),
])
def test_bad_init_rule_is_refused_at_validate(tmp_path, rule, fragment):
    path = write(tmp_path, HEADER + "nodes:\n  - {name: conv, block: conv2d, out: 8, kernel: 3}\n"
                 f"init:\n  - {{blocks: [conv2d], {rule}}}\n")
    err = error_of(path)
    assert err.code == "schema.init" and fragment in err.message, err.format()
    assert err.location.line == 7 and err.location.path[:2] == ("init", 0)


def test_good_init_rules_build(tmp_path):
    path = write(tmp_path, HEADER + "nodes:\n  - {name: conv, block: conv2d, out: 8, kernel: 3}\n"
                 "  - {name: bn, block: batchnorm}\n"
                 "init:\n  - {blocks: [conv2d], weight: \"kaiming_normal(0, 'fan_out', nonlinearity='relu')\", "
                 "bias: \"uniform(-0.1, b=0.1)\"}\n  - {blocks: [batchnorm], weight: \"normal(1, 0.02)\", "
                 "bias: zeros}\n")
    model = archspec.load(path, seed=0)
    assert model.bn.bias.detach().abs().sum() == 0 and float(model.conv.bias.detach().abs().max()) <= 0.1


# ---- class 8: command-line arguments -----------------------------------------------------------------------
@pytest.mark.parametrize("argv, fragment", [
    (["validate", "{spec}", "--set", "foo"], "KEY=VALUE"),
    (["validate", "{spec}", "--set", "=3"], "KEY=VALUE"),
    (["validate", "{spec}", "--set", "x=[[["], "YAML syntax"),
    (["validate", "{spec}", "--set", "x=\"\\e\""], "control character"),
    (["build", "{spec}", "--seed", "-1"], "a seed must be from 0"),
    (["build", "{spec}", "--seed", str(1 << 64)], "a seed must be from 0"),
    (["build", "{spec}", "--seed", "1e3"], "must be an integer"),
    (["build", "{spec}", "--depth", "-5"], "a depth must be from 0 to 64"),
    (["build", "{spec}", "--depth", "9" * 30], "must be an integer"),
    (["draw", "{spec}", "--depth", "x"], "must be an integer"),
    (["validate", "{spec}", "--max-calls", "0"], "--max-calls must be from 1"),
    (["validate", "{spec}", "--max-params", "-1"], "--max-params must be from 0"),
    (["validate", "{spec}", "--max-activation-mb", "9" * 40], "must be an integer"),
    (["validate", "{spec}", "--max-work", "0"], "--max-work must be from 1"),
    (["draw", "{spec}", "--rankdir", "XX"], "invalid choice"),
    (["nonsense"], "invalid choice"),
])
def test_malformed_argument_is_exit_2(capsys, argv, fragment):
    spec = ROOT / "specs/osnet_x0_25.yaml"
    code, _, err = cli(capsys, *(a.format(spec=spec) for a in argv))
    assert code == 2 and fragment in err, err
    assert "Traceback" not in err and "internal error" not in err


def test_unknown_draw_format_is_exit_2(capsys, tmp_path):
    code, _, err = cli(capsys, "draw", BAD_WEIGHTS / "tiny.yaml", "-o", tmp_path / "x.xyz")
    assert code == 2 and "[draw.format]" in err


# ---- class 11: variants and overrides are checked against the base's schema --------------------------------
@pytest.mark.parametrize("line, code", [
    ("input: ~", "schema.list_type"), ("input: []", "schema.too_short"), ("input: [3, 8, 8, 8]", "schema.too_long"),
    ("input: [0]", "schema.greater_than_equal"), ("input: [true]", "schema.int_type"),
    ("description: ~", "schema.string_type"), ("params: {width: ~}", "schema.param_type"),
    ("params: {width: [1]}", "schema.param_type"), ("params: ~", "schema.dict_type"),
])
def test_variant_values_are_checked_against_the_base(tmp_path, capsys, line, code):
    write(tmp_path, HEADER + "params:\n  width: {type: int, default: 4, min: 1}\n"
          "nodes:\n  - {name: conv, block: conv2d, out: width, kernel: 3}\n", "base.yaml")
    variant = write(tmp_path, f"archspec: 1\nname: v\nextends: base.yaml\n{line}\n", "v.yaml")
    err = error_of(variant)
    assert err.code == code and err.location.file == str(variant) and err.location.line == 4, err.format()
    for command in ("validate", "draw", "build"):
        rc, _, text = cli(capsys, command, variant)
        assert rc == 1 and f"[{code}]" in text and "internal error" not in text, text


def test_override_values_are_checked_against_the_base(tmp_path, capsys):
    spec = write(tmp_path, HEADER + "params:\n  width: {type: int, default: 4, min: 1}\n"
                 "nodes:\n  - {name: conv, block: conv2d, out: width, kernel: 3}\n")
    for value in ("~", "0", "1.5", "[1]", "abc"):
        rc, _, err = cli(capsys, "validate", spec, "--set", f"width={value}")
        assert rc == 1 and "[schema.param_type]" in err and "internal error" not in err, err


# ---- class 3: output paths ---------------------------------------------------------------------------------
def test_output_onto_a_symlink_fifo_or_directory_is_refused(tmp_path, capsys):
    real = tmp_path / "real.json"
    real.write_text("keep")
    (tmp_path / "link.json").symlink_to(real)
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "dir.json").mkdir()
    for name in ("link.json", "fifo.json", "dir.json", "missing/x.json"):
        rc, _, err = cli(capsys, "schema", "-o", tmp_path / name)
        assert rc == 2 and "[io.output]" in err, (name, err)
    assert (tmp_path / "link.json").is_symlink() and real.read_text() == "keep"
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo.json").st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.json", "fifo.json", "link.json", "real.json"]


def test_output_to_a_character_device_is_written_through(capsys):
    rc, _, err = cli(capsys, "schema", "-o", os.devnull)
    assert rc == 0, err
    assert stat.S_ISCHR(os.lstat(os.devnull).st_mode)


def test_output_honours_the_umask_and_keeps_a_replaced_files_mode(tmp_path, capsys):
    old = os.umask(0o022)
    try:
        assert cli(capsys, "schema", "-o", tmp_path / "new.json")[0] == 0
        kept = tmp_path / "kept.json"
        kept.write_text("x")
        kept.chmod(0o640)
        assert cli(capsys, "schema", "-o", kept)[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.json").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o640 and kept.read_text().startswith("{")


def test_draw_refuses_a_bad_output_path_before_compiling(tmp_path, capsys):
    rc, _, err = cli(capsys, "draw", BAD / "when_bomb.yaml", "-o", tmp_path / "nope" / "x.dot")
    assert rc == 2 and "[io.output]" in err and "limit.work" not in err


# ---- class 4: input paths ----------------------------------------------------------------------------------
def test_special_files_are_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "f.yaml"
    os.mkfifo(fifo)
    for path in (fifo, Path(os.devnull), tmp_path):
        err = within(5, error_of, path)
        assert err.code == "io.not_a_file" and err.format().startswith(f"{path}: "), err.format()
    os.mkfifo(tmp_path / "w.safetensors")
    rc, _, err = within(5, cli, capsys, "export", BAD_WEIGHTS / "tiny.yaml", "--format", "python",
                        "-o", tmp_path / "m.py", "--weights", tmp_path / "w.safetensors")
    assert rc == 1 and "[io.not_a_file]" in err and not (tmp_path / "m.py").exists()


def test_extends_cannot_leave_the_spec_folder_through_a_symlink(tmp_path):
    secret = "TOPSECRET_VALUE_1234"
    outside = tmp_path / "outside"
    outside.mkdir()
    write(outside, f"archspec: 1\nname: x\ninput: [3, 8, 8]\nnodes: {secret}\n", "s.yaml")
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "esc.yaml").symlink_to(outside / "s.yaml")
    (specs / "sub").symlink_to(outside)
    for target in ("esc.yaml", "sub/s.yaml"):
        variant = write(specs, f"archspec: 1\nname: v\nextends: {target}\n", "v.yaml")
        err = error_of(variant)
        assert err.code == "schema.extends_path" and (err.location.line, err.location.col) == (3, 10)
        assert secret not in err.format()
    inside = specs / "in"
    inside.mkdir()
    write(inside, HEADER + "nodes:\n  - {name: r, block: relu}\n", "b.yaml")
    (specs / "ok.yaml").symlink_to(inside / "b.yaml")
    assert archspec.compile(write(specs, "archspec: 1\nname: v\nextends: ok.yaml\n", "v.yaml")).name == "v"


def test_extends_onto_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "f.yaml")
    variant = write(tmp_path, "archspec: 1\nname: v\nextends: f.yaml\n", "v.yaml")
    err = within(5, error_of, variant)
    assert err.code == "io.not_a_file" and err.location.line == 3


# ---- class 5: control characters and diagram escaping ------------------------------------------------------
@pytest.mark.parametrize("escape, code", [("\\e", 0x1B), ("\\a", 0x07), ("\\0", 0), ("\\x7f", 0x7F),
                                          ("\\b", 0x08), ("\\uFFFE", 0xFFFE)])
def test_yaml_escapes_of_control_characters_are_refused(tmp_path, escape, code):
    for where in (f'description: "x{escape}y"\n', f'nodes:\n  - {{name: r, block: relu, doc: "{escape}"}}\n'):
        path = write(tmp_path, HEADER + where + ("nodes:\n  - {name: r, block: relu}\n" if "nodes" not in where
                                                 else ""))
        err = error_of(path)
        assert err.code == "yaml.control_character" and f"U+{code:04X}" in err.message
        assert err.location.line in (4, 5), err.format()


def test_escaped_key_is_located_at_its_mapping(tmp_path):
    err = error_of(write(tmp_path, HEADER + 'nodes:\n  - {block: relu, "n\\ea": 1}\n'))
    assert err.code == "yaml.control_character" and err.location.path == ("nodes", 0)


def test_dot_labels_are_escaped(tmp_path):
    from archspec.backends.diagram import escape

    assert escape("a\\Nb") == "a\\\\Nb" and escape("x\x1by") == "x\ufffdy"
    dot = archspec.draw(archspec.compile(BAD_WEIGHTS / "tiny.yaml"))
    dot.node("evil", escape('<b>"&</b>\\G'))
    source = dot.source
    assert '"<b>\\"&</b>\\\\G"' in source  # quoted text, never an HTML label


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_svg_is_well_formed_xml():
    from archspec.backends.diagram import escape
    from archspec.backends.render import render_bytes

    dot = archspec.draw(archspec.compile(ROOT / "specs/osnet_x0_25.yaml"))
    dot.node("evil", escape('<script>&amp;"\x01'))
    ET.fromstring(render_bytes(dot, "svg"))


# ---- class 7: weights --------------------------------------------------------------------------------------
WEIGHT_CASES = {k: v for k, v in json.loads((BAD_WEIGHTS / "expected.json").read_text()).items()
                if not k.startswith("_")}


@pytest.fixture(scope="module")
def tiny():
    graph = archspec.compile(BAD_WEIGHTS / "tiny.yaml")
    return graph, archspec.build(graph)


@pytest.mark.parametrize("name", sorted(WEIGHT_CASES))
def test_hostile_weights_get_a_weights_code(tiny, name, tmp_path, monkeypatch):
    from archspec.backends.weights import load_weights

    monkeypatch.chdir(tmp_path)
    graph, model = tiny
    if WEIGHT_CASES[name] is None:
        load_weights(model, BAD_WEIGHTS / name, graph)
        return
    with pytest.raises(ArchspecError) as info:
        load_weights(model, BAD_WEIGHTS / name, graph)
    err = info.value
    assert err.code == WEIGHT_CASES[name], err.format()
    assert err.format().startswith(f"{BAD_WEIGHTS / name}: ") and ":0:0" not in err.format()
    assert not (tmp_path / "pwned.txt").exists()


def test_every_bad_weights_file_is_listed():
    files = {p.name for p in BAD_WEIGHTS.iterdir() if p.suffix not in (".py", ".yaml", ".json")}
    assert files == set(WEIGHT_CASES)


def _many_tensors_safetensors(path: Path, count: int) -> None:
    import struct

    header = {f"t{i}": {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i in range(count)}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * (4 * count))


def test_100k_tiny_tensors_are_answered_quickly(tiny, tmp_path):
    import zipfile

    from archspec.backends.weights import load_weights

    graph, model = tiny
    _many_tensors_safetensors(tmp_path / "many.safetensors", 100_000)
    # what torch.save writes for 100k tensors, without the minute it takes: a zip of 100k data records
    with zipfile.ZipFile(tmp_path / "many.pt", "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("many/data.pkl", b"")
        for i in range(100_000):
            archive.writestr(f"many/data/{i}", b"\0\0\0\0")
    for name in ("many.safetensors", "many.pt"):
        start = time.perf_counter()
        with pytest.raises(ArchspecError) as info:
            load_weights(model, tmp_path / name, graph)
        assert info.value.code == "weights.too_many" and time.perf_counter() - start < 2.0


def test_weights_through_the_cli_are_never_exit_4(capsys, tmp_path):
    for name in ("compressed.pt", "duplicate_key.safetensors", "sparse.pt", "nonstring_key.pt"):
        rc, _, err = cli(capsys, "export", BAD_WEIGHTS / "tiny.yaml", "--format", "python", "-o",
                         tmp_path / "m.py", "--weights", BAD_WEIGHTS / name)
        assert rc == 1 and f"[{WEIGHT_CASES[name]}]" in err and err.startswith(f"{BAD_WEIGHTS / name}: "), err


# ---- class 10: file-level errors ---------------------------------------------------------------------------
def test_file_level_errors_read_file_colon_message(tmp_path, capsys):
    rc, _, err = cli(capsys, "validate", tmp_path / "nope.yaml")
    assert rc == 1 and err.startswith(f"{tmp_path / 'nope.yaml'}: cannot read file") and ":0:0" not in err


# ---- class 1: work is bounded before it is done ------------------------------------------------------------
@pytest.mark.parametrize("name, code", [("when_bomb.yaml", "limit.work"), ("hold_bomb.yaml", "limit.work"),
                                        ("when_bomb_expr.yaml", "limit.work"),
                                        ("hold_params.yaml", "limit.params"),
                                        ("input_activation.yaml", "limit.activations")])
def test_work_bombs_are_refused_in_well_under_a_second(name, code, capsys):
    start = time.perf_counter()
    rc, _, err = cli(capsys, "validate", BAD / name)
    assert rc == 3 and f"[{code}]" in err
    assert time.perf_counter() - start < 1.0


def test_nested_blocks_without_repeat_are_bounded(tmp_path):
    """8 nodes per block, 8 levels deep: 8**8 visits of a `when: false` node, with no repeat to predict."""
    blocks = ""
    for i in range(7):
        blocks += f"  b{i}:\n    block: b{i}\n    nodes:\n" + "".join(f"      - {{name: n{j}, block: b{i + 1}}}\n"
                                                                  for j in range(8))
    blocks += "  b7:\n    block: b7\n    nodes:\n      - {block: relu, when: false}\n"
    path = write(tmp_path, HEADER + "blocks:\n" + blocks + "nodes:\n  - {name: top, block: b0}\n")
    start = time.perf_counter()
    err = within(20, error_of, path, Limits(max_work=20_000))
    assert err.code == "limit.work" and time.perf_counter() - start < 5


def test_call_nodes_multiply_in_the_estimate(tmp_path):
    """`call:` re-runs a module: 8 levels of one block plus 7 re-runs of it is 8**8 visits, refused up front."""
    blocks = ""
    for i in range(7):
        blocks += (f"  b{i}:\n    block: b{i}\n    nodes:\n      - {{name: n0, block: b{i + 1}}}\n"
                   + "".join(f"      - {{name: u{j}, call: n0}}\n" for j in range(7)))
    blocks += "  b7:\n    block: b7\n    nodes:\n      - {name: r, block: relu}\n"
    path = write(tmp_path, HEADER + "blocks:\n" + blocks + "nodes:\n  - {name: top, block: b0}\n")
    start = time.perf_counter()
    err = within(20, error_of, path)
    assert err.code == "limit.work" and time.perf_counter() - start < 1.0


def test_the_export_trace_batch_counts_toward_the_activation_cap(tmp_path, capsys):
    from archspec.graph.limits import activation_bytes

    graph = archspec.compile(BAD_WEIGHTS / "tiny.yaml")
    cap_mb = 1
    big = write(tmp_path, "archspec: 1\nname: big\ninput: [16, 64, 96]\nnodes:\n  - {name: r, block: relu}\n")
    assert activation_bytes(archspec.compile(big)) <= cap_mb << 20 < activation_bytes(archspec.compile(big), 2)
    rc, _, err = cli(capsys, "export", big, "--format", "torchscript", "-o", tmp_path / "m.pt",
                     "--max-activation-mb", cap_mb)
    assert rc == 3 and "[limit.activations]" in err and "batch 2" in err and not (tmp_path / "m.pt").exists()
    assert graph.total_params == 10


# ---- class 9: diagrams -------------------------------------------------------------------------------------
def test_diagram_edge_cap_applies_before_layout_and_is_located_at_the_spec(tmp_path, capsys):
    sources = "".join(f"  - {{name: r{i}, block: relu, from: input}}\n" for i in range(64))
    nodes = sources + "".join(f"  - {{name: c{i}, block: concat, from: [{', '.join(f'r{j}' for j in range(64))}]}}\n"
                              for i in range(40))
    path = write(tmp_path, "archspec: 1\nname: wide\ninput: [1, 2, 2]\nnodes:\n" + nodes +
                 f"  - {{name: out, block: concat, from: [{', '.join(f'c{i}' for i in range(40))}]}}\n")
    start = time.perf_counter()
    rc, _, err = cli(capsys, "draw", path, "--format", "svg", "-o", tmp_path / "x.svg")
    assert rc == 3 and "[limit.diagram_edges]" in err and err.startswith(f"{path}:1:1: nodes: ")
    assert "<draw>" not in err and time.perf_counter() - start < 5


# ---- class 12: large specs within the caps stay fast -------------------------------------------------------
def test_repeated_expressions_are_evaluated_once(tmp_path):
    expression = "+".join(["(width*2-1)"] * 18)
    path = write(tmp_path, HEADER + "params:\n  width: {type: int, default: 1}\nnodes:\n  - name: s\n    repeat: 4000\n"
                 f"    seq:\n      - {{block: dropout, p: \"({expression}) * 0.0\"}}\n")
    graph = archspec.compile(path, Limits(max_expr_work=5_000))  # 4,000 evaluations of ~200 nodes: one is paid
    assert len(graph.calls()) == 4000


def test_expression_work_is_capped(tmp_path):
    expression = "+".join(["(w*2-1)"] * 24)
    rows = "".join(f"          - [{i}]\n" for i in range(300))
    path = write(tmp_path, HEADER + f"nodes:\n  - name: s\n    seq:\n      - block: dropout\n"
                 f"        p: \"({expression}) * 0.0\"\n        table:\n          columns: [w]\n"
                 f"          rows:\n{rows}")
    err = error_of(path, Limits(max_expr_work=20_000))
    assert err.code == "limit.expr_work"


# ---- the closing promise: exit 4 is unreachable ------------------------------------------------------------
def test_fuzzers_find_no_exit_4(tmp_path):
    """A bounded run of the three fuzzers of tests/fuzz/hostile_fuzz.py (longer runs: see its --help)."""
    proc = subprocess.run([sys.executable, str(ROOT / "tests/fuzz/hostile_fuzz.py"), "--seconds", "8",
                           "--workdir", str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["exit_4"] == [], json.dumps(report["exit_4"][:3], indent=1)
    assert all(report["counts"][k] > 20 for k in ("argv", "weights", "extends")), report["counts"]


# ---- docs ---------------------------------------------------------------------------------------------------
DOC = (ROOT / "docs/hostile-input.md").read_text()
FAMILIES = "yaml|schema|table|expr|graph|shape|limit|weights|draw|io|usage|export|port"


def test_every_error_code_in_the_package_is_documented():
    import re

    sources = "\n".join(p.read_text() for p in (ROOT / "archspec").rglob("*.py"))
    codes = set(re.findall(rf"[\"']((?:{FAMILIES})\.[a-z_0-9]+)[\"']", sources))
    assert len(codes) > 60
    missing = [c for c in sorted(codes) if f"`{c}`" not in DOC and f"`{c.split('.')[1]}`" not in DOC]
    assert not missing, missing


def test_every_cap_is_documented_with_its_default_and_flag():
    import dataclasses

    for field in dataclasses.fields(Limits):
        row = next((line for line in DOC.splitlines() if f"`{field.name}`" in line), "")
        flag = "--" + field.name.replace("_", "-").replace("-bytes", "-mb")
        default = field.default if field.name != "max_activation_bytes" else "8 GiB"
        shown = f"{default:,}" if isinstance(default, int) else default
        assert flag in row and shown in row, (field.name, row)


def test_the_build_cap_refuses_before_torch(tmp_path, capsys):
    """At the defaults a spec at the call cap (100,000 calls) is refused by --max-build (40,000); scaled down."""
    path = write(tmp_path, HEADER + "nodes:\n  - name: outer\n    repeat: 4\n    seq:\n      - repeat: 300\n"
                 "        seq:\n          - {block: identity}\n")
    start = time.perf_counter()
    rc, _, err = cli(capsys, "build", path, "--max-build", 1000)
    assert rc == 3 and "[limit.build]" in err and time.perf_counter() - start < 2
    assert Limits().max_build < Limits().max_calls  # so a spec at the call cap is refused by the build cap
    assert cli(capsys, "build", write(tmp_path, HEADER + "nodes:\n  - {name: r, block: relu}\n", "ok.yaml"))[0] == 0
