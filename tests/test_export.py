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
    out = tmp_path / "osnet.onnx"
    weights = tmp_path / "w.safetensors"
    archspec.save(archspec.load(ROOT / "specs/osnet_x1_0.yaml", seed=2), weights)
    assert archspec.cli_main(["export", str(ROOT / "specs/osnet_x1_0.yaml"), "--format", "onnx", "-o", str(out),
                              "--weights", str(weights)]) == 0
    model = archspec.load(ROOT / "specs/osnet_x1_0.yaml", weights=weights).eval()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for batch in (1, 3):  # the batch dimension is dynamic
        x = torch.randn(batch, 3, 256, 128)
        with torch.no_grad():
            expected = model(x).numpy()
        got = session.run(None, {"x": x.numpy()})[0]
        assert abs(got - expected).max() <= 1e-4 * abs(expected).max()
