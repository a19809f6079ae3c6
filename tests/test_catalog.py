"""Specs by name: ARCHSPEC_PATH folders, then the shipped specs; `archspec list` and `archspec.list_specs`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

import archspec
from archspec.errors import ArchspecError

TINY = "archspec: 1\nname: {name}\ncitation: {citation}\ninput: [4]\nnodes:\n  - {{name: fc, block: linear, out: 2}}\n"


def test_a_bare_name_is_a_shipped_spec(capsys):
    assert archspec.compile("resnet50").total_params == 25_557_032
    assert archspec.parse("osnet_x0_25").file == str(ROOT / "specs/osnet_x1_0.yaml")  # the variant's base
    assert sum(p.numel() for p in archspec.load("osnet_x0_25").parameters()) == 714_864
    assert archspec.cli_main(["build", "osnet_x0_25", "--meta", "--depth", "1"]) == 0
    assert archspec.cli_main(["validate", "resnet50", "mobilenet_v2"]) == 0
    assert "resnet50: ok (resnet50, 25,557,032 params)" in capsys.readouterr().out
    assert archspec.cli_main(["draw", "resnet50", "--depth", "1", "--format", "dot"]) == 0
    assert "digraph" in capsys.readouterr().out


def test_an_existing_file_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "resnet50").write_text(TINY.format(name="local", citation="here"))
    assert archspec.compile("resnet50").name == "local"
    assert archspec.compile("resnet101").name == "resnet101"


def test_archspec_path_comes_before_the_shipped_specs(tmp_path, monkeypatch, capsys):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    (first / "resnet50.yaml").write_text(TINY.format(name="mine", citation="my own resnet50"))
    (second / "my_net.yaml").write_text(TINY.format(name="my_net", citation="Me. My net. 2026."))
    (second / "broken.yaml").write_text("archspec: 1\nname: broken\n")
    monkeypatch.setenv("ARCHSPEC_PATH", os.pathsep.join([str(first), str(tmp_path / "absent"), str(second)]))
    assert archspec.compile("resnet50").name == "mine"
    assert archspec.compile("my_net").total_params == 10
    infos = {info.name: info for info in archspec.list_specs()}
    assert infos["my_net"].origin == "ARCHSPEC_PATH" and infos["my_net"].reference == "Me. My net. 2026."
    assert infos["resnet50"].file == str(first / "resnet50.yaml") and infos["resnet101"].origin == "shipped"
    assert "schema.missing" in infos["broken"].error and infos["broken"].params is None
    assert archspec.cli_main(["list", "my_*"]) == 0
    out = capsys.readouterr().out
    assert "my_net" in out and "Me. My net. 2026." in out and "resnet" not in out


def test_an_unknown_name_is_a_located_error(capsys):
    with pytest.raises(ArchspecError) as info:
        archspec.load("resnet5O")
    assert info.value.code == "io.unknown_spec" and "did you mean 'resnet50'" in info.value.hint
    assert archspec.cli_main(["build", "osnet_x1_O"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("osnet_x1_O: no file") and "[io.unknown_spec]" in err


def test_list_shows_name_params_macs_input_and_reference(capsys):
    infos = archspec.list_specs("osnet")
    assert [i.name for i in infos] == ["osnet_ibn_x1_0", "osnet_x0_25", "osnet_x0_5", "osnet_x0_75", "osnet_x1_0"]
    x1 = infos[-1]
    assert (x1.params, x1.macs, x1.input, x1.origin) == (2_682_508, 978_875_392, (3, 256, 128), "shipped")
    assert x1.reference.startswith("Zhou, Yang, Cavallaro, Xiang. Omni-Scale")
    assert [i.name for i in archspec.list_specs("resnet5?")] == ["resnet50"]
    assert archspec.list_specs("resnet50")[0].pretrained == ("imagenet", "imagenet_v2")
    assert archspec.cli_main(["list", "resnet*", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == {"resnet50", "resnet101", "resnet152", "resnet50_reid", "resnet101_reid",
                                         "resnet152_reid"}
    assert archspec.cli_main(["list", "nothing_matches"]) == 1


def test_list_does_not_import_torch():
    probe = ("import sys\nfrom archspec.cli import main\ncode = main(['list'])\n"
             "assert 'torch' not in sys.modules, 'torch was imported'\nsys.exit(code)\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:5] == ["name", "params", "MACs", "input", "pretrained"]
    assert any(line.startswith("osnet_x1_0 ") and "2.68M" in line and "3x256x128" in line for line in lines)
    assert len(lines) == 1 + len(list((ROOT / "specs").glob("*.yaml")))


def test_the_build_puts_every_shipped_spec_in_the_package(tmp_path):
    """setup.py's build_py copies specs/*.yaml to archspec/specs/, which the wheel carries and catalog reads
    when installed (also checked by hand: `pip wheel`, then a fresh venv running `archspec build osnet_x1_0`)."""
    proc = subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(tmp_path), "build_py",
                           "-d", str(tmp_path / "lib")], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    built = tmp_path / "lib/archspec"
    shipped = sorted(p.name for p in (ROOT / "specs").glob("*.yaml"))
    assert sorted(p.name for p in (built / "specs").glob("*.yaml")) == shipped
    assert (built / "catalog.py").is_file() and (built / "blocks/bottleneck.yaml").is_file()
    for name in shipped:
        assert (built / "specs" / name).read_bytes() == (ROOT / "specs" / name).read_bytes()
