"""Export: standalone Python (no archspec import), TorchScript and ONNX (checked in onnxruntime)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import ROOT, SPECS

import archspec
from archspec.backends.pysource import python_source

RUNNER = textwrap.dedent("""
    import importlib.util, json, sys, torch
    sys.modules["archspec"] = None  # the generated code must not need archspec
    report = {}
    for name, folder in json.loads(sys.argv[1]).items():
        spec = importlib.util.spec_from_file_location(name, f"{folder}/{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = module.build()
        state = torch.load(f"{folder}/{name}.pt", weights_only=True)
        model.load_state_dict(state, strict=True)
        x = torch.load(f"{folder}/{name}.x.pt", weights_only=True)
        model.eval()
        with torch.no_grad():
            out = model(x)
        model.train()
        torch.manual_seed(0)
        train_out = model(x)
        torch.save({"eval": out, "train": train_out}, f"{folder}/{name}.out.pt")
        report[name] = list(model.state_dict()) == list(state)
    print(json.dumps(report))
""")


def as_tuple(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def test_python_export_of_every_spec_runs_without_archspec(tmp_path):
    models = {}
    for spec in SPECS:
        graph = archspec.compile(spec)
        model = archspec.build(graph, seed=0)
        (tmp_path / f"{spec.stem}.py").write_text(python_source(graph, model))
        torch.save(model.state_dict(), tmp_path / f"{spec.stem}.pt")
        x = torch.randn(2, *graph.input_shape)
        torch.save(x, tmp_path / f"{spec.stem}.x.pt")
        models[spec.stem] = (model, x)
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps({s.stem: str(tmp_path) for s in SPECS})],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert all(json.loads(proc.stdout.strip().splitlines()[-1]).values())  # identical state_dict keys
    for name, (model, x) in models.items():
        got = torch.load(tmp_path / f"{name}.out.pt", weights_only=True)
        model.eval()
        with torch.no_grad():
            expected = model(x)
        for a, b in zip(as_tuple(expected), as_tuple(got["eval"]), strict=True):
            assert torch.equal(a, b), name
        model.train()
        torch.manual_seed(0)
        expected = model(x)
        for a, b in zip(as_tuple(expected), as_tuple(got["train"]), strict=True):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), name


def test_python_export_is_readable():
    graph = archspec.compile(ROOT / "specs/osnet_x1_0.yaml")
    source = python_source(graph, archspec.build(graph))
    assert "class OSBlock(nn.Module):" in source and "class ChannelGate(nn.Module):" in source
    block = source.split("class OSBlock(nn.Module):")[1].split("\nclass ")[0]
    assert block.count("self.gate(") == 4  # one module, four calls
    assert "def forward_train(self, x):" in source and "def forward_eval(self, x):" in source
    assert "archspec" not in source.split('"""')[2]  # only the docstring mentions it
    compile(source, "osnet.py", "exec")  # hazard-ok: checks that generated text parses; nothing runs
    assert not any(";" in line for line in block.splitlines())  # one statement per line (fx writes `a += b;  c = a`)


def test_python_export_has_no_statement_or_name_errors(tmp_path):
    """ruff's statement (E7), syntax (E9), pyflakes (F) and whitespace (W) rules on the exported files; line length
    and import order are issue #15's."""
    import subprocess
    import sys

    for name in ("resnet50", "osnet_x0_25", "mobilenetv2_ssdlite"):
        graph = archspec.compile(ROOT / f"specs/{name}.yaml")
        path = tmp_path / f"{name}.py"
        path.write_text(python_source(graph, archspec.build(graph)))
        proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "--select",
                               "E7,E9,F,W", str(path)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_exports(tmp_path):
    for fmt, suffix in (("torchscript", "pt"), ("python", "py")):
        out = tmp_path / f"m.{suffix}"
        assert archspec.cli_main(["export", str(ROOT / "specs/mobilenet_v2.yaml"), "--format", fmt,
                                  "-o", str(out), "--seed", "1"]) == 0
        assert out.stat().st_size > 1000
    scripted = torch.jit.load(tmp_path / "m.pt")
    model = archspec.load(ROOT / "specs/mobilenet_v2.yaml", seed=1).eval()
    x = torch.randn(3, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(scripted(x), model(x), atol=1e-5)


def test_onnx_export_of_osnet_agrees_in_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path / "models" / "osnet.onnx"
    out.parent.mkdir()
    weights = tmp_path / "w.safetensors"
    archspec.save(archspec.load(ROOT / "specs/osnet_x1_0.yaml", seed=2), weights)
    for _ in range(2):  # a second export replaces the file and leaves nothing else either
        assert archspec.cli_main(["export", str(ROOT / "specs/osnet_x1_0.yaml"), "-o", str(out),  # .onnx: ONNX
                                  "--weights", str(weights)]) == 0
        assert sorted(p.name for p in out.parent.iterdir()) == ["osnet.onnx"]  # self-contained, no side file
    model = archspec.load(ROOT / "specs/osnet_x1_0.yaml", weights=weights).eval()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for batch in (1, 3):  # the batch dimension is dynamic
        x = torch.randn(batch, 3, 256, 128)
        with torch.no_grad():
            expected = model(x).numpy()
        got = session.run(None, {"x": x.numpy()})[0]
        assert abs(got - expected).max() <= 1e-4 * abs(expected).max()


SMALL = """archspec: 1
name: small
input: [3, 16, 16]
nodes:
  - {name: conv, block: conv2d, out: 64, kernel: 3, padding: 1}
  - {name: bn, block: batchnorm}
  - {name: relu, block: relu}
  - {name: pool, block: global_avgpool}
  - {name: fc, block: linear, out: 5}
"""


def small_spec(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


def test_onnx_above_the_inline_limit_writes_a_named_data_file(tmp_path, monkeypatch, capsys):
    """Above 2 GB (here: a limit lowered to 0 bytes) the weights go to NAME.onnx.data, whose name is printed."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from archspec.backends import export

    monkeypatch.setattr(export, "ONNX_INLINE_LIMIT", 0)
    spec, out = small_spec(tmp_path), tmp_path / "out" / "s.onnx"
    out.parent.mkdir()
    assert archspec.cli_main(["export", str(spec), "-o", str(out), "--seed", "3"]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["s.onnx", "s.onnx.data"]
    assert f"wrote {out}.data" in capsys.readouterr().err
    model = archspec.load(spec, seed=3).eval()
    x = torch.randn(3, 3, 16, 16)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        assert abs(session.run(None, {"x": x.numpy()})[0] - model(x).numpy()).max() < 1e-5


def test_exported_program_has_a_dynamic_batch(tmp_path):
    out = tmp_path / "m.pt2"
    spec = ROOT / "specs/osnet_x0_25.yaml"
    assert archspec.cli_main(["export", str(spec), "--format", "exported", "-o", str(out), "--seed", "4"]) == 0
    program = torch.export.load(str(out))
    model = archspec.load(spec, seed=4).eval()
    for batch in (1, 3):
        x = torch.randn(batch, 3, 256, 128)
        with torch.no_grad():
            assert torch.allclose(program.module()(x), model(x), atol=1e-5)


def test_torchscript_warnings_do_not_reach_the_terminal(tmp_path):
    out = tmp_path / "m.pt"
    proc = subprocess.run([sys.executable, "-W", "default", "-m", "archspec.cli", "export", str(small_spec(tmp_path)),
                           "-o", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr and proc.stderr.strip() == f"wrote {out} (torchscript)"
    assert torch.jit.load(str(out))(torch.randn(2, 3, 16, 16)).shape == (2, 5)


@pytest.mark.parametrize("argv, code", [
    (["export", "SPEC", "-o", "m.pt", "--format", "onnx"], "export.format"),
    (["export", "SPEC", "-o", "m.onnx", "--format", "python"], "export.format"),
    (["export", "SPEC", "-o", "m.bin"], "export.format"),  # no --format and a suffix that names none
    (["draw", "SPEC", "-o", "r.svg", "--format", "png"], "draw.format"),
    (["draw", "SPEC", "-o", "r.txt"], "draw.format"),
])
def test_a_suffix_that_contradicts_the_format_is_exit_2(tmp_path, capsys, argv, code):
    spec = small_spec(tmp_path)
    argv = [str(spec) if a == "SPEC" else str(tmp_path / a) if "." in a and a[0] in "mr" else a for a in argv]
    assert archspec.cli_main(argv) == 2
    assert f"[{code}]" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.yaml"]  # nothing written


def test_the_format_is_read_from_the_suffix(tmp_path, capsys):
    spec = small_spec(tmp_path)
    assert archspec.cli_main(["export", str(spec), "-o", str(tmp_path / "m.py")]) == 0
    assert "(python)" in capsys.readouterr().err
    assert archspec.cli_main(["export", str(spec), "-o", str(tmp_path / "m.bin"), "--format", "python"]) == 0
    assert archspec.cli_main(["draw", str(spec), "-o", str(tmp_path / "r.gv"), "--format", "dot"]) == 0
    assert (tmp_path / "r.gv").read_text().startswith("digraph")
