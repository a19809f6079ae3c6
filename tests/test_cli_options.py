"""Issue #14: input-size overrides, summary columns and memory, and the command line's own options."""

from __future__ import annotations

import argparse
import os
import stat
import subprocess
import sys

import pytest
from conftest import ROOT

import archspec
from archspec.cli import _parser, main

OSNET = ROOT / "specs/osnet_x0_25.yaml"
RESNET = ROOT / "specs/resnet50.yaml"


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


# ---- 4. input size ------------------------------------------------------------------------------------------
def test_input_overrides_the_declared_input_everywhere(capsys):
    graph = archspec.compile(RESNET, input=(3, 128, 96))
    assert graph.input_shape == (3, 128, 96) and graph.call("avgpool").in_shapes[0] == (2048, 4, 3)
    assert archspec.compile(RESNET).input_shape == (3, 224, 224)  # the spec itself is untouched
    assert "input 3×128×96" in archspec.summary(RESNET, input=[3, 128, 96])
    assert "3×128×96" in archspec.draw(RESNET, depth=1, input=(3, 128, 96)).source
    model = archspec.load(OSNET, input=(3, 64, 32)).eval()
    assert model._plan.input_shape == (3, 64, 32)
    rc, out, _ = run(capsys, "build", OSNET, "--input", "3,64,32", "--meta", "--depth", "1")
    assert rc == 0 and "input 3×64×32" in out
    rc, out, _ = run(capsys, "validate", OSNET, "--input", "3,64,32")
    assert rc == 0 and "ok" in out
    rc, out, _ = run(capsys, "draw", OSNET, "--input", "3,64,32", "--format", "dot", "--depth", "1")
    assert rc == 0 and "3×64×32" in out


def test_a_net_that_cannot_take_the_input_gets_a_located_error(capsys):
    rc, _, err = run(capsys, "validate", OSNET, "--input", "3,8,8")
    assert rc == 1
    first = err.splitlines()[0]
    assert first.startswith(f"{ROOT / 'specs/osnet_x1_0.yaml'}:29:21: nodes[2]") and "[shape.mismatch]" in first
    assert "collapses 1×1 to 0×0 (the input was overridden to 3×8×8; the spec declares 3×256×128)" in first


def test_caps_apply_to_the_overridden_input(capsys):
    rc, _, err = run(capsys, "validate", OSNET, "--input", "3,65536,65536")
    assert rc == 3 and "[limit.activations]" in err and "overridden" in err


@pytest.mark.parametrize("bad", ["3,a,4", "3,224,224,1", "", "0,8,8", "3,,4", "3,99999999,4", "-3,4,4"])
def test_a_malformed_input_is_exit_2(capsys, bad):
    with pytest.raises(SystemExit) as info:
        main(["validate", str(OSNET), f"--input={bad}"])
    assert info.value.code == 2 and "--input" in capsys.readouterr().err


def test_a_bad_input_in_python_is_a_spec_error():
    with pytest.raises(archspec.ArchspecError) as info:
        archspec.compile(OSNET, input=(3, 0, 8))
    assert info.value.code == "schema.greater_than_equal"


def test_export_traces_at_the_overridden_input(tmp_path, capsys):
    out = tmp_path / "o.py"
    assert run(capsys, "export", OSNET, "-o", out, "--input", "3,64,32")[0] == 0
    assert "3, 64, 32" in out.read_text()


# ---- 5. summary ---------------------------------------------------------------------------------------------
def test_summary_columns_and_memory_footer(capsys):
    rc, out, _ = run(capsys, "build", RESNET, "--meta", "--depth", "1", "--batch", "8")
    assert rc == 0
    lines = out.splitlines()
    assert lines[1].split() == ["name", "type", "input", "output", "args", "params", "MACs"]
    conv1 = next(line for line in lines if line.startswith("conv1 "))
    assert conv1.split()[:6] == ["conv1", "conv2d", "3×224×224", "64×112×112", "k=7", "s=2"]
    assert "parameter memory: 97.49 MiB (float32)" in out
    from archspec.backends.summary import activation_bytes

    graph = archspec.compile(RESNET)
    assert activation_bytes(graph, 8) == 8 * activation_bytes(graph, 1)
    assert f"forward activation memory at batch 8: {activation_bytes(graph, 8) / 2**30:,.2f} GiB" in out
    layer2 = next(line for line in archspec.summary(graph, depth=2).splitlines() if line.startswith("layer2.0 "))
    assert "s=2" in layer2.split()  # a block row shows the stride it was called with


def test_summary_accepts_a_built_module():
    model = archspec.load(OSNET, seed=0)
    assert archspec.summary(model, depth=1) == archspec.summary(OSNET, depth=1)
    assert archspec.summary(archspec.optimize(model.eval()), batch=4) == archspec.summary(OSNET, batch=4)
    assert "_archspec_graph" not in dict(model.named_modules()) and "_archspec_graph" not in model.state_dict()


# ---- 6. command line ----------------------------------------------------------------------------------------
def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"archspec {archspec.__version__}"


def subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_argument_has_help_and_every_command_examples():
    for name, parser in subcommands().items():
        for action in parser._actions:
            assert action.help, (name, action.dest)
        assert parser.epilog.startswith("examples:\n  archspec " + name), name
        assert parser.formatter_class is argparse.RawDescriptionHelpFormatter


def test_help_examples_parse():
    """Every example in the subcommands' help is a valid command line (its files aside)."""
    parser = _parser()
    for sub in subcommands().values():
        for line in sub.epilog.splitlines()[1:]:
            argv = line.split(">")[0].split()[1:]
            parser.parse_args(argv)


def test_blocks_name_prints_one_block(capsys):
    rc, out, _ = run(capsys, "blocks", "Bottleneck")
    assert rc == 0 and out.startswith("### `Bottleneck`") and out.count("### ") == 1 and "`planes`" in out
    rc, out, _ = run(capsys, "blocks", "conv2d")
    assert rc == 0 and out.startswith("### `conv2d` (conv)") and "`kernel`" in out
    rc, out, err = run(capsys, "blocks", "Botleneck")
    assert rc == 2 and out == "" and "[usage.block]" in err and "did you mean 'Bottleneck'" in err


def test_depth_means_the_same_in_build_and_draw():
    from archspec.backends.diagram import Diagram
    from archspec.backends.summary import rows

    graph = archspec.compile(RESNET)
    for depth in (1, 2, 3, 0):
        diagram = Diagram(graph, depth, "TB", 10_000)
        drawn = set(diagram.groups) | set(diagram.alias)  # runs of identical blocks drawn once, ×N
        listed = {row.name.split("@")[0] for row in rows(graph, depth)}
        assert drawn == listed, depth


def test_files_written_honour_the_umask(tmp_path, capsys):
    old = os.umask(0o027)
    try:
        assert run(capsys, "schema", "-o", tmp_path / "s.json")[0] == 0
        assert run(capsys, "draw", OSNET, "-o", tmp_path / "d.dot", "--depth", "1")[0] == 0
        assert run(capsys, "export", OSNET, "-o", tmp_path / "m.py")[0] == 0
        archspec.save(archspec.load(ROOT / "tests/bad_weights/tiny.yaml"), tmp_path / "w.safetensors")
    finally:
        os.umask(old)
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path


def test_no_ansi_escapes_when_stderr_is_not_a_tty(tmp_path):
    red = tmp_path / "\x1b[31mred.yaml"
    env = {**os.environ, "FORCE_COLOR": "1", "PYTHONPATH": str(ROOT)}
    for argv in (["validate", str(red)], ["build", str(OSNET), "\x1b[2J"], ["blocks", "\x1b[31m"]):
        proc = subprocess.run([sys.executable, "-m", "archspec.cli", *argv], capture_output=True, text=True,
                              timeout=120, env=env)
        assert proc.returncode in (1, 2) and proc.stderr, argv
        assert "\x1b" not in proc.stderr + proc.stdout and "\\x1b" in proc.stderr, argv


README_EXAMPLES = [
    "archspec --version",
    "archspec blocks Bottleneck",
    "archspec build specs/osnet_x1_0.yaml --input 3,128,64 --batch 32 --depth 1",
    "archspec export specs/osnet_x0_25.yaml -o osnet.pt2 --input 3,128,64",
]


def test_readme_examples_of_the_new_options_run(tmp_path, monkeypatch, capsys):
    readme = (ROOT / "README.md").read_text()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").symlink_to(ROOT / "specs")
    for line in README_EXAMPLES:
        assert f"\n{line}" in readme, line
        try:
            rc = main(line.split()[1:])
        except SystemExit as exc:  # --version
            rc = exc.code
        assert rc == 0, (line, capsys.readouterr().err)
    out = capsys.readouterr().out
    assert "forward activation memory at batch 32" in out and "input 3×128×64" in out
    import torch

    program = torch.export.load("osnet.pt2")
    assert program.module()(torch.randn(2, 3, 128, 64)).shape == (2, 512)
