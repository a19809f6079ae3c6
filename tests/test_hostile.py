"""Specs and weights from strangers: no code runs, limits hold before allocation, files stay safe."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest
import torch
from conftest import ROOT, SPECS

import archspec
from archspec.errors import ArchspecError
from archspec.schema import spec_schema
from archspec.source import load_file

BAD = ROOT / "tests/bad"
TWO_GIB = 2 << 30


def limited(seconds: int = 10, memory: int = TWO_GIB):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))
    return apply


@pytest.mark.parametrize("name", sorted(p.name for p in BAD.glob("*.yaml")))
def test_hostile_file_through_build_under_2gib_and_10s(name, tmp_path):
    before = set(os.listdir(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "archspec.cli", "build", str(BAD / name)], capture_output=True,
                          text=True, timeout=10, preexec_fn=limited(), cwd=tmp_path)
    assert proc.returncode in (1, 3), proc.stderr
    assert name in proc.stderr and "Traceback" not in proc.stderr
    assert set(os.listdir(tmp_path)) == before  # no side effect


MEMORY_PROBE = textwrap.dedent("""
    import resource, sys
    import torch  # a CUDA build of torch maps GBs of libraries: cap what building may add, not the total
    size = [int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmSize:")][0] * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + (2 << 30), size + (2 << 30)))
    from archspec.cli import main
    sys.exit(main(["build", sys.argv[1]]))
""")


def test_memory_is_checked_before_allocation(tmp_path):
    spec = tmp_path / "big.yaml"
    spec.write_text("archspec: 1\nname: big\ninput: [4096]\nnodes:\n"
                    "  - {name: fc, block: linear, out: 131072}\n  - {name: fc2, block: linear, out: 4096}\n")
    proc = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(spec)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "[limit.memory]" in proc.stderr and "4,097 MiB" in proc.stderr


def test_caps_are_the_callers():
    graph = archspec.compile(ROOT / "specs/resnet50.yaml")
    with pytest.raises(ArchspecError) as info:
        archspec.compile(ROOT / "specs/resnet50.yaml", archspec.Limits(max_params=graph.total_params - 1))
    assert info.value.code == "limit.params"
    with pytest.raises(ArchspecError) as info:
        archspec.compile(ROOT / "specs/resnet50.yaml", archspec.Limits(max_activation_bytes=1 << 20))
    assert info.value.code == "limit.activations"


AUDIT = textwrap.dedent("""
    import contextlib, io, json, os, sys, tempfile
    import archspec
    from archspec.cli import main
    with contextlib.redirect_stdout(io.StringIO()):
        main(["build", "specs/resnet50.yaml"])  # warm-up: first imports run module code
    seen = []
    FORBIDDEN = ("os.system", "subprocess.", "os.exec", "os.posix_spawn", "os.fork", "os.spawn", "socket.", "pty.")
    # code may run from the Python installation, the virtual environment and the archspec package, as
    # modules being imported; torch.fx and archspec's codegen compile the forwards they generate from the
    # typed graph (validated identifiers and typed literals only)
    ROOTS = tuple(os.path.realpath(p) + os.sep
                  for p in {sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(archspec.__file__))})
    def imported_module(name):
        return name.endswith(".py") and os.path.isfile(name) and os.path.realpath(name).startswith(ROOTS)
    def hook(event, args):
        if event.startswith(FORBIDDEN):
            seen.append([event, repr(args)[:80]])
        elif event == "exec":
            name = getattr(args[0], "co_filename", "?")
            if not (name.startswith(("<eval_with_key>", "<archspec-generated ")) or imported_module(name)):
                seen.append([event, name])
    sys.addaudithook(hook)
    # canaries: the hook must see code that merely claims to be a module file, or comes from elsewhere
    outside = os.path.join(tempfile.mkdtemp(), "payload.py")
    open(outside, "w").write("x = 1\\n")
    for name in ("payload.py", "<string>", outside, os.path.join(ROOTS[0], "no_such_module.py")):
        exec(compile("x = 1", name, "exec"), {})
    canaries, seen[:] = list(seen), []
    with contextlib.redirect_stdout(io.StringIO()):
        codes = [main(["validate", "specs/osnet_x1_0.yaml"]), main(["build", "specs/mixnet_s.yaml"]),
                 main(["build", "specs/ft_net.yaml"]), main(["validate", "tests/bad/python_tag.yaml"]),
                 main(["export", "specs/osnet_x0_25.yaml", "--format", "python", "-o",
                       os.path.join(tempfile.mkdtemp(), "osnet.py")])]
    print(json.dumps({"codes": codes, "seen": seen, "canaries": canaries}))
""")


def test_audit_hook_sees_no_process_exec_or_socket():
    proc = subprocess.run([sys.executable, "-c", AUDIT], capture_output=True, text=True, timeout=300, cwd=ROOT)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [c[1].rpartition("/")[2] for c in report["canaries"]] == [
        "payload.py", "<string>", "payload.py", "no_such_module.py"]  # the hook can see an exec
    assert report["codes"] == [0, 0, 0, 1, 0]
    assert report["seen"] == []


@pytest.mark.parametrize("use_libyaml", [True, False])
def test_nesting_bomb_is_refused_by_both_parsers(use_libyaml):
    """PyYAML's C loader crashes in its recursive composer on ~50 KB of `[`; archspec never composes."""
    probe = textwrap.dedent(f"""
        from archspec.errors import ArchspecError
        from archspec.source import LoaderLimits, load_text
        try:
            load_text("[" * 5_000_000, "bomb.yaml", LoaderLimits(use_libyaml={use_libyaml}, max_bytes=16 << 20))
        except ArchspecError as exc:
            print(exc.code)
    """)
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          preexec_fn=limited(), cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.strip() == "yaml.too_deep", proc.stderr


def test_libyaml_and_python_parsers_agree():
    from archspec.source import LoaderLimits, load_text

    for path in [*SPECS, *BAD.glob("*.yaml")]:
        results = []
        for use_libyaml in (True, False):
            try:
                got = load_text(path.read_bytes(), path.name, LoaderLimits(use_libyaml=use_libyaml))
                results.append((got.data, got.values, got.keys))
            except ArchspecError as exc:
                results.append((exc.code, exc.location.line, exc.location.col))
        assert results[0] == results[1], path.name


def test_no_yaml_composer_or_constructor_is_called():
    sources = "\n".join(p.read_text() for p in (ROOT / "archspec").rglob("*.py"))
    for call in ("yaml.load(", "yaml.safe_load(", "yaml.compose(", ".get_single_node(", ".construct_document(",
                 "yaml.full_load(", "yaml.unsafe_load("):
        assert call not in sources


def test_schema_is_draft7_and_every_spec_validates():
    schema = spec_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    for spec in SPECS:
        errors = list(validator.iter_errors(load_file(spec).data))
        assert not errors, f"{spec.name}: {errors[0].message[:200]}"
    assert not validator.is_valid(load_file(BAD / "typo_key.yaml").data)  # editors flag unknown args
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert "$defs" not in json.dumps(schema) and "prefixItems" not in json.dumps(schema)


def test_readme_shows_the_schema_modeline():
    assert "# yaml-language-server: $schema=" in (ROOT / "README.md").read_text()


# ---- weights ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    return archspec.load(ROOT / "specs/osnet_x0_25.yaml", seed=3)


def test_safetensors_round_trip(small, tmp_path):
    path = tmp_path / "w.safetensors"
    archspec.save(small, path)
    again = archspec.load(ROOT / "specs/osnet_x0_25.yaml", weights=path)
    assert all(torch.equal(a, b) for a, b in zip(small.state_dict().values(), again.state_dict().values()))


def test_torchvision_style_pt_round_trip(small, tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"state_dict": small.state_dict()}, path)
    again = archspec.load(ROOT / "specs/osnet_x0_25.yaml", weights=path)
    assert torch.equal(again.conv1.conv.weight, small.conv1.conv.weight)


def test_mismatch_is_grouped_by_node_with_lines(small, tmp_path):
    path = tmp_path / "w.safetensors"
    archspec.save(small, path)
    with pytest.raises(ArchspecError) as info:
        archspec.load(ROOT / "specs/osnet_x0_5.yaml", weights=path)
    text = info.value.format()
    assert info.value.code == "weights.mismatch"
    assert "conv1.conv (conv_layer.yaml:" in text and "file (16, 3, 7, 7)" in text


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_pickle_payload_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"conv1.conv.weight": Evil()}, path)
    with pytest.raises(ArchspecError) as info:
        archspec.load(ROOT / "specs/osnet_x0_25.yaml", weights=path)
    assert info.value.code == "weights.unreadable"
    assert not (tmp_path / "pwned.txt").exists()


@pytest.mark.parametrize("payload, code", [(b"not a checkpoint", "weights.unreadable"),
                                           (None, "weights.not_a_state_dict")])
def test_garbage_weights_are_refused(tmp_path, payload, code):
    path = tmp_path / "w.pt"
    if payload is None:
        torch.save([1, 2, 3], path)
    else:
        path.write_bytes(payload)
    with pytest.raises(ArchspecError) as info:
        archspec.load(ROOT / "specs/osnet_x0_25.yaml", weights=path)
    assert info.value.code == code


def test_outputs_are_written_atomically(tmp_path, monkeypatch):
    from archspec import atomic

    target = tmp_path / "schema.json"
    target.write_text("old")

    def boom(*_):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError):
        atomic.write_atomic(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["schema.json"]


HAZARD = re.compile(r"(^|[^.\w])(eval|exec|__import__)\(|pickle\.loads?\(|import_module\(|yaml\.(load|load_all)\(")


def test_no_hazards_in_the_package():
    for path in Path(ROOT / "archspec").rglob("*.py"):
        text = path.read_text()
        lines = [ln for ln in text.splitlines() if HAZARD.search(ln) and "hazard-ok" not in ln]
        assert not lines, f"{path.name}: {lines}"
        for line in text.splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path.name}: {line}"


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_checkpoint_of_another_dtype_is_refused(small, tmp_path, suffix):
    """Same names and shapes, float16 data: the header check refuses it instead of loading it silently."""
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in small.state_dict().items()}
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in half.items()}, str(path))
    else:
        torch.save(half, path)
    with pytest.raises(ArchspecError) as info:
        archspec.load(ROOT / "specs/osnet_x0_25.yaml", weights=path)
    text = info.value.format()
    assert info.value.code == "weights.mismatch"
    floats = sum(v.is_floating_point() for v in half.values())
    assert f"0 missing, 0 unexpected, {floats} differ" in text
    assert "torch.float16, model" in text and "torch.float32" in text
