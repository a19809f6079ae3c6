"""Diagrams: deterministic DOT (golden files), safe text, the `dot` binary optional for DOT output."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from conftest import ROOT

import archspec
from archspec.backends.diagram import diagram
from archspec.errors import LimitError

GOLDEN = ROOT / "tests/golden/draw"
CASES = [(spec, depth) for spec in ("resnet50", "osnet_x1_0", "mixnet_s") for depth in (1, 2)]
UPDATE = os.environ.get("ARCHSPEC_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("spec, depth", CASES, ids=[f"{s}-d{d}" for s, d in CASES])
def test_golden_dot(spec, depth):
    source = archspec.draw(ROOT / "specs" / f"{spec}.yaml", depth=depth).source
    golden = GOLDEN / f"{spec}_d{depth}.dot"
    if UPDATE and (not golden.exists() or golden.read_text() != source):
        golden.write_text(source)
        pytest.fail(f"rewrote {golden.name}: review the diff, then rerun without ARCHSPEC_UPDATE_GOLDEN")
    assert source == golden.read_text(), "regenerate with ARCHSPEC_UPDATE_GOLDEN=1 if the change is intended"


def test_golden_files_are_not_being_rewritten_in_ci():
    assert not (UPDATE and os.environ.get("CI")), "ARCHSPEC_UPDATE_GOLDEN=1 must not be set in CI"


def test_a_changed_drawing_fails_even_while_updating(tmp_path, monkeypatch):
    """Run the golden test itself against a stale golden file, with updating on: it rewrites and fails."""
    import test_draw

    stale = tmp_path / "golden"
    stale.mkdir()
    (stale / "resnet50_d1.dot").write_text("digraph stale {}\n")
    monkeypatch.setattr(test_draw, "GOLDEN", stale)
    for update in (False, True):
        monkeypatch.setattr(test_draw, "UPDATE", update)
        with pytest.raises(pytest.fail.Exception if update else AssertionError):
            test_draw.test_golden_dot("resnet50", 1)
    assert (stale / "resnet50_d1.dot").read_text().startswith("digraph resnet50 {")  # rewritten
    test_draw.test_golden_dot("resnet50", 1)  # and now current


def test_depth_one_collapses_repeats_and_deeper_levels_expand():
    top = archspec.draw(ROOT / "specs/resnet50.yaml", depth=1).source
    assert "Bottleneck ×3" in top and "Bottleneck ×6" in top and "cluster_" not in top
    deeper = archspec.draw(ROOT / "specs/resnet50.yaml", depth=2).source
    assert "cluster_layer1" in deeper and "1 … 5" in deeper  # layer3.1 to layer3.5 collapsed


def test_osnet_gate_is_one_node_with_four_calls():
    source = archspec.draw(ROOT / "specs/osnet_x1_0.yaml", depth=3).source
    assert "shared: 1 module, 4 calls" in source
    gate_edges = [line for line in source.splitlines() if line.strip().startswith('"conv2.0.gate" -> ')]
    assert len(gate_edges) == 4  # one edge per call into the sum
    assert '"conv2.0.downsample"' in source  # the projection branch is drawn


def test_dot_format_needs_no_binary(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no `dot` here
    out = tmp_path / "osnet.dot"
    proc = subprocess.run([sys.executable, "-m", "archspec.cli", "draw", str(ROOT / "specs/osnet_x1_0.yaml"),
                           "-o", str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith("digraph osnet_x1_0 {")


def test_svg_without_binary_is_a_clear_error(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}
    out = tmp_path / "osnet.svg"
    proc = subprocess.run([sys.executable, "-m", "archspec.cli", "draw", str(ROOT / "specs/osnet_x1_0.yaml"),
                           "-o", str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert "Graphviz" in proc.stderr and "apt-get install graphviz" in proc.stderr and "brew" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_svg_with_the_real_binary_is_xml(tmp_path):
    if shutil.which("dot") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's graphviz (see README)")
        pytest.skip("Graphviz `dot` is not installed")
    out = tmp_path / "osnet.svg"
    assert archspec.cli_main(["draw", str(ROOT / "specs/osnet_x1_0.yaml"), "-o", str(out)]) == 0
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    texts = "".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    assert "OSBlock" in texts and "2,682,508 params" in texts
    assert not list(tmp_path.glob(".osnet.svg.*"))  # the temporary file was renamed away


EVIL_SPEC = r"""archspec: 1
name: evil
input: [3, 8, 8]
blocks:
  Evil:
    block: Evil
    params:
      tag: {type: str}
    nodes:
      - {name: conv, block: conv2d, out: 4}
nodes:
  - name: e
    block: Evil
    tag: "'x\"];\\\\N<b>\\\\G} digraph {'"
"""


def test_text_is_escaped(tmp_path):
    # `tag` is the expression 'x"];\\N<b>\\G} digraph {', i.e. the text x"];\N<b>\G} digraph {
    path = tmp_path / "evil.yaml"
    path.write_text(EVIL_SPEC)
    dot = archspec.draw(path, depth=1)
    assert 'x\\"];\\\\N<b>\\\\G} digraph {' in dot.source
    if shutil.which("dot"):
        proc = subprocess.run(["dot", "-Tsvg"], input=dot.source, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.count("<svg") == 1 and "&lt;b&gt;" in proc.stdout


def test_node_cap_suggests_a_smaller_depth():
    graph = archspec.compile(ROOT / "specs/resnet152.yaml")
    with pytest.raises(LimitError) as info:
        diagram(graph, depth=4, max_nodes=100)
    assert "smaller --depth" in info.value.hint


def test_deterministic_source():
    a = archspec.draw(ROOT / "specs/mixnet_s.yaml", depth=2).source
    b = archspec.draw(ROOT / "specs/mixnet_s.yaml", depth=2).source
    assert a == b


def test_gallery_is_current():
    from archspec.tools.gallery import stale

    assert stale() == [], "run: python -m archspec.tools.gallery"
